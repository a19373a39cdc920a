"""Everything of the engine that knows faust's or aiokafka's internals (docs/engine.md).

- ``app``: faust's ``App`` with a producer buffer fit for the engine's flushes;
- ``rebalance``: faust's Kafka transport with the seek after a rebalance made to lose
  nothing, and each stage's offset guard over it (``GuardedStage``);
- ``fetch_loop``: faust's fetch path, marking a message read only once handed;
- ``gaps``: the offset guard's rules (pure); ``gap_probe``: whether a gap holds messages;
- ``batch_send``: ``kpi.updates`` records straight to aiokafka, in batches.
"""
