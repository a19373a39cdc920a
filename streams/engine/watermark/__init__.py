"""The watermark: the clock logic (``clock``, pure) and its exchange between the workers
(``exchange``, over ``internal.progress``)."""
