"""The controller manager's controllers: level-triggered reconcilers (informer -> queue -> reconcile(key))."""
