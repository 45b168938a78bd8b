"""One intake cycle: poll the mailbox while worker threads process what each batch committed."""

from __future__ import annotations

import functools
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
    waits on the IMAP server and on fsync overlap with parsing. `[pipeline] threads` messages are in
    flight at once: while one is parsed in a parser process, another is written to the database (the
    leases that let several daemons share the work keep two threads off the same message). Raises what
    the poll raises (MailboxError, ...) after the workers have finished what was already recorded.
    """
    result = CycleResult()
    arrived = threading.Condition()
    batches = [0]  # committed batches so far: a worker that saw an older count has work waiting
    polling_done = threading.Event()
    failure: list[BaseException] = []
    lock = threading.Lock()

    def merge(r: ProcessResult) -> None:
        with lock:
            result.process.processed += r.processed
            result.process.quarantined += r.quarantined
            result.process.quarantined_ids.extend(r.quarantined_ids)

    def more_work(seen: int) -> bool:
        return batches[0] != seen or polling_done.is_set()

    def worker() -> None:
        try:
            # Start the parser processes now, while the first batch is fetched, not when it has landed.
            services.message_parser()
            while not should_stop() and not failure:
                finished = polling_done.is_set()
                seen = batches[0]
                merge(process_pending(services, stages, should_stop=should_stop, on_done=on_processed))
                if finished:
                    return
                with arrived:
                    arrived.wait_for(functools.partial(more_work, seen), timeout=0.5)
        except BaseException as e:
            failure.append(e)

    def wake() -> None:
        with arrived:
            batches[0] += 1
            arrived.notify_all()

    threads = [
        threading.Thread(target=worker, name=f"intake-process-{i}", daemon=True)
        for i in range(services.config.pipeline.threads)
    ]
    for t in threads:
        t.start()
    try:
        if poller is not None:

            def fetched(done: int, total: int) -> None:
                wake()
                if on_fetched:
                    on_fetched(done, total)

            result.poll = poller.poll(should_stop=should_stop, progress=fetched)
    finally:
        polling_done.set()
        wake()
        for t in threads:
            t.join()
    if failure:
        raise failure[0]
    return result
