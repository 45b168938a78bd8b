"""One intake cycle: poll the mailbox while a worker thread processes what each batch committed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from intake.pipeline import ProcessResult, Services, Stage, process_pending
from intake.poller import Poller, PollResult


@dataclass
class CycleResult:
    poll: PollResult | None = None
    process: ProcessResult = field(default_factory=ProcessResult)


def run_cycle(
    services: Services,
    stages: list[tuple[str, Stage]],
    poller: Poller | None,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_fetched: Callable[[int, int], None] | None = None,
    on_processed: Callable[[int, str], None] | None = None,
) -> CycleResult:
    """Poll (if a poller is given) and process everything pending.

    Processing starts as soon as the first batch is committed instead of after the whole poll, so the
    waits on the IMAP server and on fsync overlap with parsing. Raises what the poll raises (MailboxError,
    ...) after the worker has finished what was already recorded.
    """
    result = CycleResult()
    wake = threading.Event()
    polling_done = threading.Event()
    failure: list[BaseException] = []

    def merge(r: ProcessResult) -> None:
        result.process.processed += r.processed
        result.process.quarantined += r.quarantined
        result.process.quarantined_ids.extend(r.quarantined_ids)

    def worker() -> None:
        try:
            while not should_stop():
                finished = polling_done.is_set()
                merge(process_pending(services, stages, should_stop=should_stop, on_done=on_processed))
                if finished:
                    return
                wake.wait(0.5)
                wake.clear()
        except BaseException as e:
            failure.append(e)

    thread = threading.Thread(target=worker, name="intake-process", daemon=True)
    thread.start()
    try:
        if poller is not None:

            def fetched(done: int, total: int) -> None:
                wake.set()
                if on_fetched:
                    on_fetched(done, total)

            result.poll = poller.poll(should_stop=should_stop, progress=fetched)
    finally:
        polling_done.set()
        wake.set()
        thread.join()
    if failure:
        raise failure[0]
    return result
