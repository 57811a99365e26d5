"""One module per Corefile directive, holding its parsing and its behaviour.

`kdns.plugins.directives` is the table of directives in chain order (kdns's plugin.cfg); `base`
is the contract a query plugin implements, `memo` what plugins tell the fast path, `parsing`
the argument readers their parsers share.
"""
