"""Single sign-on: LDAP / Active Directory and OpenID Connect accounts matched to Rollcall's people."""
