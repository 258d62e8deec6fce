"""The SOAP `login` call of the Salesforce partner API, as simple-salesforce speaks it."""

from __future__ import annotations

import html
import re

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns="urn:partner.soap.sforce.com" xmlns:sf="urn:fault.partner.soap.sforce.com"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
)
INVALID_LOGIN = "Invalid username, password, security token; or user locked out."


def _element(xml: str, name: str) -> str | None:
    match = re.search(rf"<(?:\w+:)?{name}>(.*?)</(?:\w+:)?{name}>", xml, re.DOTALL)
    return html.unescape(match.group(1)) if match else None


def parse_login(xml: str) -> tuple[str | None, str | None]:
    """(username, password+security token) from a login request envelope."""
    return _element(xml, "username"), _element(xml, "password")


def login_response(server_url: str, session_id: str) -> str:
    """A loginResponse; both values must already be XML-escaped."""
    return _ENVELOPE.format(
        body="<loginResponse><result>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{server_url}</serverUrl><sessionId>{session_id}</sessionId>"
        "<userId>0055g0000000001AAA</userId>"
        "</result></loginResponse>"
    )


def login_fault() -> str:
    """The INVALID_LOGIN fault Salesforce answers (with HTTP 500) to wrong credentials."""
    return _ENVELOPE.format(
        body="<soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode>"
        f"<faultstring>INVALID_LOGIN: {INVALID_LOGIN}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
        f"<sf:exceptionMessage>{INVALID_LOGIN}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault>"
    )
