"""How many messages each stage's agent may have waiting (faust's stream buffer)."""

from __future__ import annotations

from pathlib import Path

from streams.app import BATCHES_WAITING, build_app
from streams.settings import Settings


def test_the_internal_stages_hold_few_batches_and_the_ingest_its_setting(tmp_path: Path) -> None:
    """A message of ``internal.entities`` or ``internal.cells`` is a batch held decoded while
    it waits: those agents take ``BATCHES_WAITING``, not the 256 input events of
    ``stream_buffer_messages``. faust's ``app.topic`` drops a ``maxsize`` it is given (0.15.3),
    which this would catch: the stream each agent iterates has the bound."""
    settings = Settings(worker_data_dir=tmp_path, stream_buffer_messages=300, poll_records=700)
    app = build_app(settings)
    waiting = {}
    for name, agent in app.agents.items():
        stream_channel = agent.channel.clone(is_iterator=True)
        waiting[name] = stream_channel.queue.maxsize
    assert waiting == {"ingest": 300, "entity-stage": BATCHES_WAITING, "publisher": BATCHES_WAITING}
    assert app.conf.broker_max_poll_records == 700  # records one fetch hands on, not all
