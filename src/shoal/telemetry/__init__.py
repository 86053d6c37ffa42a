"""shoal.telemetry: what the mesh's proxies report, read back for people and for Prometheus.

The proxies make Istio's standard metrics themselves (generate/telemetry*.py, served on each
proxy's metrics port by agent/metricsport.py). This package reads them: parsing Prometheus
text (`promtext`), scraping every proxy (`scrape`), the golden signals per workload and the
edges between workloads (`golden`, pure), Prometheus service discovery for the proxies
(`discovery`), and the control plane's own metrics beside the xDS ones (`cpmetrics`).
"""
