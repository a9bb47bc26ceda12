"""The scheduler: Kubernetes' framework (PreFilter, Filter, Score, Reserve, Bind) and its plugins."""
