"""Who may reach the worklist: local users and API tokens.

:mod:`~worklist.accounts.users` holds users and how a caller is recognised;
:mod:`~worklist.accounts.tokens` issues, lists and revokes API tokens.
"""
