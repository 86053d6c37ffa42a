"""Sample services for the demo mesh and the tests: not part of shoal's own machinery.

`python -m shoal.samples.service` is one configurable HTTP service (backend or frontend, with
injectable errors and latency); `python -m shoal.samples.traffic` is a steady-rate traffic
generator that summarises which versions answered. Nothing else in shoal imports this package.
"""
