"""Salesforce fixtures, written once in tests/support/salesforce.py."""

from tests.support.salesforce import make_org, org

__all__ = ["make_org", "org"]
