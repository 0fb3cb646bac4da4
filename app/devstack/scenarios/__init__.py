"""Scripted simulator scenarios that make the example project's agents work offline.

`invoice`: the invoice pipeline (`invoice_rules(project, payload)`, `sample_rules(project)`).
"""
