"""Static HTML report with matplotlib plots, readable without Grafana."""
