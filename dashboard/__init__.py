"""The staff dashboard (issue 7): a server-rendered FastAPI + Jinja2 app in Chinese, served by `intake run`
beside the poller and by `intake serve` alone."""
