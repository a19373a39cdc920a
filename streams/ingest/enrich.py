"""Join an event with the reference data: the dimensions it is counted under.

An unknown rep, product or account does not drop the event: it is counted under its own raw
key, and the miss is reported so that it can be counted too.
"""

from __future__ import annotations

from streams.contracts.enriched import Dimensions
from streams.contracts.events import Envelope
from streams.ingest.reference_cache import ReferenceCache


def dimensions(event: Envelope, cache: ReferenceCache) -> Dimensions:
    """Dimensions of ``event``: its own fields first, then the reference joins."""
    misses: list[str] = []
    # the fields by name: ``getattr(event, name, None)`` costs pydantic's ``__getattr__`` and
    # an AttributeError for each field the event's type does not have
    fields = vars(event)
    rep_id = fields.get("rep_id")
    team = fields.get("team")
    region = fields.get("region")
    if rep_id is not None:
        rep = cache.rep(rep_id)
        if rep is None:
            misses.append("rep")
        else:
            team = team or rep.team
            region = region or rep.region
    sector = None
    if (account_id := fields.get("account_id")) is not None:
        account = cache.account(account_id)
        if account is None:
            misses.append("account")
        else:
            sector = account.sector
            if rep_id is None:  # no rep to take the region from: the account's
                region = region or account.region
    products: list[str] = []
    line_products: list[str] = []
    raw_products = [line.product_id for line in fields.get("lines") or []]
    single = fields.get("product_id")
    for i, raw in enumerate([*raw_products, *([single] if single is not None else [])]):
        product_id = cache.product_id(raw)
        if product_id is None:
            misses.append("product")
        product = product_id or raw
        if i < len(raw_products):
            line_products.append(product)
        if product not in products:
            products.append(product)
    channel = fields.get("channel")
    return Dimensions(
        rep=rep_id,
        team=team,
        region=region,
        products=tuple(products),
        line_products=tuple(line_products),
        channel=str(channel) if channel is not None else None,
        sector=sector,
        misses=tuple(misses),
    )
