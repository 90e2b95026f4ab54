import datetime

from complianceiq.common.v1 import access_pb2 as _access_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AccountState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCOUNT_STATE_UNSPECIFIED: _ClassVar[AccountState]
    ACCOUNT_STATE_PENDING_VERIFICATION: _ClassVar[AccountState]
    ACCOUNT_STATE_ACTIVE: _ClassVar[AccountState]
    ACCOUNT_STATE_LOCKED: _ClassVar[AccountState]
    ACCOUNT_STATE_DISABLED: _ClassVar[AccountState]
ACCOUNT_STATE_UNSPECIFIED: AccountState
ACCOUNT_STATE_PENDING_VERIFICATION: AccountState
ACCOUNT_STATE_ACTIVE: AccountState
ACCOUNT_STATE_LOCKED: AccountState
ACCOUNT_STATE_DISABLED: AccountState

class Account(_message.Message):
    __slots__ = ("id", "email", "email_verified", "mfa_enabled", "state", "organization_ids", "create_time", "update_time", "last_login_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    EMAIL_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    MFA_ENABLED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_LOGIN_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    email: str
    email_verified: bool
    mfa_enabled: bool
    state: AccountState
    organization_ids: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    last_login_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., email: _Optional[str] = ..., email_verified: _Optional[bool] = ..., mfa_enabled: _Optional[bool] = ..., state: _Optional[_Union[AccountState, str]] = ..., organization_ids: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_login_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TokenPair(_message.Message):
    __slots__ = ("access_token", "refresh_token", "token_type", "expires_in", "refresh_expires_in", "organization_id")
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_EXPIRES_IN_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    refresh_expires_in: int
    organization_id: str
    def __init__(self, access_token: _Optional[str] = ..., refresh_token: _Optional[str] = ..., token_type: _Optional[str] = ..., expires_in: _Optional[int] = ..., refresh_expires_in: _Optional[int] = ..., organization_id: _Optional[str] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("email", "password", "full_name")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    email: str
    password: str
    full_name: str
    def __init__(self, email: _Optional[str] = ..., password: _Optional[str] = ..., full_name: _Optional[str] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("account", "email_verification_required")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    EMAIL_VERIFICATION_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    account: Account
    email_verification_required: bool
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ..., email_verification_required: _Optional[bool] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("email", "password", "organization_id")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    email: str
    password: str
    organization_id: str
    def __init__(self, email: _Optional[str] = ..., password: _Optional[str] = ..., organization_id: _Optional[str] = ...) -> None: ...

class MfaChallenge(_message.Message):
    __slots__ = ("challenge_token", "expire_time")
    CHALLENGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    challenge_token: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, challenge_token: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("tokens", "mfa_challenge")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    MFA_CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    tokens: TokenPair
    mfa_challenge: MfaChallenge
    def __init__(self, tokens: _Optional[_Union[TokenPair, _Mapping]] = ..., mfa_challenge: _Optional[_Union[MfaChallenge, _Mapping]] = ...) -> None: ...

class LogoutRequest(_message.Message):
    __slots__ = ("refresh_token", "all_sessions")
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ALL_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    refresh_token: str
    all_sessions: bool
    def __init__(self, refresh_token: _Optional[str] = ..., all_sessions: _Optional[bool] = ...) -> None: ...

class LogoutResponse(_message.Message):
    __slots__ = ("revoked_sessions",)
    REVOKED_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    revoked_sessions: int
    def __init__(self, revoked_sessions: _Optional[int] = ...) -> None: ...

class RefreshRequest(_message.Message):
    __slots__ = ("refresh_token", "organization_id")
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    refresh_token: str
    organization_id: str
    def __init__(self, refresh_token: _Optional[str] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ForgotPasswordRequest(_message.Message):
    __slots__ = ("email",)
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    email: str
    def __init__(self, email: _Optional[str] = ...) -> None: ...

class ForgotPasswordResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResetPasswordRequest(_message.Message):
    __slots__ = ("token", "new_password")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    NEW_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    token: str
    new_password: str
    def __init__(self, token: _Optional[str] = ..., new_password: _Optional[str] = ...) -> None: ...

class ResetPasswordResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyEmailRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class EnableMfaRequest(_message.Message):
    __slots__ = ("password",)
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    password: str
    def __init__(self, password: _Optional[str] = ...) -> None: ...

class EnableMfaResponse(_message.Message):
    __slots__ = ("provisioning_uri", "secret", "expire_time")
    PROVISIONING_URI_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    provisioning_uri: str
    secret: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, provisioning_uri: _Optional[str] = ..., secret: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VerifyMfaRequest(_message.Message):
    __slots__ = ("challenge_token", "code")
    CHALLENGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    challenge_token: str
    code: str
    def __init__(self, challenge_token: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class VerifyMfaResponse(_message.Message):
    __slots__ = ("mfa_enabled", "tokens", "recovery_codes")
    MFA_ENABLED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_CODES_FIELD_NUMBER: _ClassVar[int]
    mfa_enabled: bool
    tokens: TokenPair
    recovery_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, mfa_enabled: _Optional[bool] = ..., tokens: _Optional[_Union[TokenPair, _Mapping]] = ..., recovery_codes: _Optional[_Iterable[str]] = ...) -> None: ...

class GetJwksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class JsonWebKey(_message.Message):
    __slots__ = ("kty", "kid", "use", "alg", "n", "e")
    KTY_FIELD_NUMBER: _ClassVar[int]
    KID_FIELD_NUMBER: _ClassVar[int]
    USE_FIELD_NUMBER: _ClassVar[int]
    ALG_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    E_FIELD_NUMBER: _ClassVar[int]
    kty: str
    kid: str
    use: str
    alg: str
    n: str
    e: str
    def __init__(self, kty: _Optional[str] = ..., kid: _Optional[str] = ..., use: _Optional[str] = ..., alg: _Optional[str] = ..., n: _Optional[str] = ..., e: _Optional[str] = ...) -> None: ...

class GetJwksResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[JsonWebKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[JsonWebKey, _Mapping]]] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "organization_id", "name", "permissions", "hint", "creator_user_id", "create_time", "expire_time", "last_use_time", "revoke_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    CREATOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_USE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    name: str
    permissions: _containers.RepeatedScalarFieldContainer[str]
    hint: str
    creator_user_id: str
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    last_use_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., name: _Optional[str] = ..., permissions: _Optional[_Iterable[str]] = ..., hint: _Optional[str] = ..., creator_user_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_use_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("name", "permissions", "expire_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    permissions: _containers.RepeatedScalarFieldContainer[str]
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., permissions: _Optional[_Iterable[str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "secret")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    secret: str
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("api_keys", "next_page_token")
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    next_page_token: str
    def __init__(self, api_keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("api_key_id",)
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    api_key_id: str
    def __init__(self, api_key_id: _Optional[str] = ...) -> None: ...

class ExchangeApiKeyRequest(_message.Message):
    __slots__ = ("secret",)
    SECRET_FIELD_NUMBER: _ClassVar[int]
    secret: str
    def __init__(self, secret: _Optional[str] = ...) -> None: ...

class ExchangeApiKeyResponse(_message.Message):
    __slots__ = ("access_token", "expires_in")
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    expires_in: int
    def __init__(self, access_token: _Optional[str] = ..., expires_in: _Optional[int] = ...) -> None: ...

class ListAccountOrganizationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AccountOrganization(_message.Message):
    __slots__ = ("organization_id", "display_name", "roles", "require_mfa")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_MFA_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    display_name: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    require_mfa: bool
    def __init__(self, organization_id: _Optional[str] = ..., display_name: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., require_mfa: _Optional[bool] = ...) -> None: ...

class ListAccountOrganizationsResponse(_message.Message):
    __slots__ = ("organizations",)
    ORGANIZATIONS_FIELD_NUMBER: _ClassVar[int]
    organizations: _containers.RepeatedCompositeFieldContainer[AccountOrganization]
    def __init__(self, organizations: _Optional[_Iterable[_Union[AccountOrganization, _Mapping]]] = ...) -> None: ...

class ResetMemberMfaRequest(_message.Message):
    __slots__ = ("organization_id", "user_id", "reason")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    user_id: str
    reason: str
    def __init__(self, organization_id: _Optional[str] = ..., user_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResetMemberMfaResponse(_message.Message):
    __slots__ = ("account", "sessions_revoked")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_REVOKED_FIELD_NUMBER: _ClassVar[int]
    account: Account
    sessions_revoked: int
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ..., sessions_revoked: _Optional[int] = ...) -> None: ...

class GetSsoConfigRequest(_message.Message):
    __slots__ = ("org_id",)
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    def __init__(self, org_id: _Optional[str] = ...) -> None: ...

class OidcProvider(_message.Message):
    __slots__ = ("issuer", "client_id", "client_secret", "client_secret_set", "extra_scopes", "groups_claim")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_SET_FIELD_NUMBER: _ClassVar[int]
    EXTRA_SCOPES_FIELD_NUMBER: _ClassVar[int]
    GROUPS_CLAIM_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    client_id: str
    client_secret: str
    client_secret_set: bool
    extra_scopes: _containers.RepeatedScalarFieldContainer[str]
    groups_claim: str
    def __init__(self, issuer: _Optional[str] = ..., client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., client_secret_set: _Optional[bool] = ..., extra_scopes: _Optional[_Iterable[str]] = ..., groups_claim: _Optional[str] = ...) -> None: ...

class SamlProvider(_message.Message):
    __slots__ = ("idp_metadata_xml", "idp_entity_id", "groups_attribute", "sp_entity_id", "acs_url", "idp_metadata_url", "metadata_fetch_time")
    IDP_METADATA_XML_FIELD_NUMBER: _ClassVar[int]
    IDP_ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    GROUPS_ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    SP_ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    ACS_URL_FIELD_NUMBER: _ClassVar[int]
    IDP_METADATA_URL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FETCH_TIME_FIELD_NUMBER: _ClassVar[int]
    idp_metadata_xml: str
    idp_entity_id: str
    groups_attribute: str
    sp_entity_id: str
    acs_url: str
    idp_metadata_url: str
    metadata_fetch_time: _timestamp_pb2.Timestamp
    def __init__(self, idp_metadata_xml: _Optional[str] = ..., idp_entity_id: _Optional[str] = ..., groups_attribute: _Optional[str] = ..., sp_entity_id: _Optional[str] = ..., acs_url: _Optional[str] = ..., idp_metadata_url: _Optional[str] = ..., metadata_fetch_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GroupRoleMapping(_message.Message):
    __slots__ = ("group", "role_ids")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ROLE_IDS_FIELD_NUMBER: _ClassVar[int]
    group: str
    role_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group: _Optional[str] = ..., role_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SsoDomain(_message.Message):
    __slots__ = ("domain", "verified", "verification_record_name", "verification_record_value", "verify_time")
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_RECORD_NAME_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_RECORD_VALUE_FIELD_NUMBER: _ClassVar[int]
    VERIFY_TIME_FIELD_NUMBER: _ClassVar[int]
    domain: str
    verified: bool
    verification_record_name: str
    verification_record_value: str
    verify_time: _timestamp_pb2.Timestamp
    def __init__(self, domain: _Optional[str] = ..., verified: _Optional[bool] = ..., verification_record_name: _Optional[str] = ..., verification_record_value: _Optional[str] = ..., verify_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SsoConfig(_message.Message):
    __slots__ = ("org_id", "oidc", "saml", "require_sso", "default_role_ids", "group_role_mappings", "domains", "redirect_uri", "update_time")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    OIDC_FIELD_NUMBER: _ClassVar[int]
    SAML_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_SSO_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ROLE_IDS_FIELD_NUMBER: _ClassVar[int]
    GROUP_ROLE_MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    DOMAINS_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_URI_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    oidc: OidcProvider
    saml: SamlProvider
    require_sso: bool
    default_role_ids: _containers.RepeatedScalarFieldContainer[str]
    group_role_mappings: _containers.RepeatedCompositeFieldContainer[GroupRoleMapping]
    domains: _containers.RepeatedCompositeFieldContainer[SsoDomain]
    redirect_uri: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, org_id: _Optional[str] = ..., oidc: _Optional[_Union[OidcProvider, _Mapping]] = ..., saml: _Optional[_Union[SamlProvider, _Mapping]] = ..., require_sso: _Optional[bool] = ..., default_role_ids: _Optional[_Iterable[str]] = ..., group_role_mappings: _Optional[_Iterable[_Union[GroupRoleMapping, _Mapping]]] = ..., domains: _Optional[_Iterable[_Union[SsoDomain, _Mapping]]] = ..., redirect_uri: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UpdateSsoConfigRequest(_message.Message):
    __slots__ = ("org_id", "config")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    config: SsoConfig
    def __init__(self, org_id: _Optional[str] = ..., config: _Optional[_Union[SsoConfig, _Mapping]] = ...) -> None: ...

class DeleteSsoConfigRequest(_message.Message):
    __slots__ = ("org_id",)
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    def __init__(self, org_id: _Optional[str] = ...) -> None: ...

class AddSsoDomainRequest(_message.Message):
    __slots__ = ("org_id", "domain")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    domain: str
    def __init__(self, org_id: _Optional[str] = ..., domain: _Optional[str] = ...) -> None: ...

class VerifySsoDomainRequest(_message.Message):
    __slots__ = ("org_id", "domain")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    domain: str
    def __init__(self, org_id: _Optional[str] = ..., domain: _Optional[str] = ...) -> None: ...

class RemoveSsoDomainRequest(_message.Message):
    __slots__ = ("org_id", "domain")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    domain: str
    def __init__(self, org_id: _Optional[str] = ..., domain: _Optional[str] = ...) -> None: ...

class StartSsoRequest(_message.Message):
    __slots__ = ("email", "organization_id")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    email: str
    organization_id: str
    def __init__(self, email: _Optional[str] = ..., organization_id: _Optional[str] = ...) -> None: ...

class FinishOidcSsoRequest(_message.Message):
    __slots__ = ("code", "state", "error", "error_description")
    CODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    code: str
    state: str
    error: str
    error_description: str
    def __init__(self, code: _Optional[str] = ..., state: _Optional[str] = ..., error: _Optional[str] = ..., error_description: _Optional[str] = ...) -> None: ...

class FinishSamlSsoRequest(_message.Message):
    __slots__ = ("form",)
    FORM_FIELD_NUMBER: _ClassVar[int]
    form: _httpbody_pb2.HttpBody
    def __init__(self, form: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class GetSamlMetadataRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class ExchangeSsoTicketRequest(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: str
    def __init__(self, ticket: _Optional[str] = ...) -> None: ...
