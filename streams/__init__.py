"""faust-streaming processors (validate, enrich, route, pseudonymise, aggregate).

The operators' lag monitor and status page sit beside them in ``streams.monitor``.
"""
