"""The OpenShelf backend: gate decisions, alarms with evidence, staff login and the live dashboard."""
