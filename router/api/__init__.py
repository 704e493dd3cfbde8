"""The HTTP surface (aiohttp): webhooks in, the incident API, acknowledgement links, metrics.

http.py       webhook receivers, authentication, the error middleware and the routes
incidents.py  the incident API, acknowledgement links and PagerDuty's webhooks
"""
