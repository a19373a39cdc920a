"""A partition fetched past what the ingest routed is sought back to the next offset to route."""

from __future__ import annotations

from streams.engine.stalls import next_to_route, seek_back_to


def test_messages_lost_without_a_committed_offset_are_read_again_from_the_start() -> None:
    # The two-worker failure: marketing.spend/1 had 5 events, fetched (position 5), none
    # routed, no committed offset: faust's seek "to the committed offset" left it there.
    assert seek_back_to(position=5, committed=None, routed=None, start=0) == 0
    assert seek_back_to(position=5, committed=None, routed=None, start=3) == 3  # retention


def test_messages_lost_after_some_were_routed_are_read_again_after_the_last_routed() -> None:
    assert seek_back_to(position=9, committed=None, routed=4, start=0) == 5
    assert seek_back_to(position=9, committed=2, routed=4, start=0) == 5


def test_a_committed_offset_past_what_was_routed_here_wins() -> None:
    # The partition was with another worker meanwhile, which committed further.
    assert next_to_route(committed=7, routed=4, start=0) == 7
    assert seek_back_to(position=9, committed=7, routed=4, start=0) == 7


def test_nothing_is_sought_while_the_fetcher_has_not_passed_the_next_offset() -> None:
    assert seek_back_to(position=5, committed=None, routed=4, start=0) is None
    assert seek_back_to(position=3, committed=5, routed=None, start=0) is None
    assert seek_back_to(position=None, committed=None, routed=None, start=0) is None
