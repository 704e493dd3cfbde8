"""The HTTP surface (aiohttp): webhooks in, the incident API, acknowledgement links, metrics.

auth.py       the one check of a shared secret (webhook and API tokens)
browsers.py   requests from other web sites refused (DNS rebinding, cross-site posts)
http.py       webhook receivers, the error middleware and the routes
incidents.py  the incident API, acknowledgement links and PagerDuty's webhooks
views.py      the JSON the incident API shows, made from the store's records
"""
