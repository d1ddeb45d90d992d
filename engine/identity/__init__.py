"""People whose identity lives in the plant's directory (LDAP / Active Directory) or
an OIDC provider, beside the local accounts kept for service accounts and break-glass.

``people`` is the one place a directory's person becomes (or stays) a Batchline user:
the rules that a user id is never reused, whichever source it came from, and that a
person who left the directory is deactivated, audited. The directory protocols live in
their own modules and call it.
"""
