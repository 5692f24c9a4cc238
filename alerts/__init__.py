"""Alerts: immediate threat and abuse alerts, weekly digests with guidance, and exactly-once email.

``routing`` decides who hears about a classified mention at once; ``digest`` builds the weekly
digests; ``emails``, ``views``, ``guidance`` and ``render`` make the template triplets safe to
fill with scraped text; ``outbox`` stores every email under an idempotency key and delivers it
through a backend in ``transports``; ``jobs`` holds the entry points for the scheduler.
"""
