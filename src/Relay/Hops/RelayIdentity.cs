using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Relay.Hops;

/// <summary>
/// Who the relay is and whom it trusts: its identity (with its signer), the credentials it presents, the
/// authorities whose credentials it accepts (for admission and for names), and the revocations it honours.
/// </summary>
/// <param name="Identity">The relay's identity; its signer attests the relay's channel keys.</param>
/// <param name="Anchors">Authorities the relay trusts.</param>
/// <param name="Revocations">Revocation lists the relay honours; merging a newer list re-checks live hops.</param>
/// <param name="Credentials">Credentials the relay presents to agents (may be empty).</param>
public sealed record RelayIdentity(AgentIdentity Identity, TrustAnchors Anchors, RevocationRegistry Revocations, IReadOnlyList<CredentialChain> Credentials);
