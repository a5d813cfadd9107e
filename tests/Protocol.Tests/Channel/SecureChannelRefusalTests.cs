using System.Collections.Concurrent;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>
/// Wrong identities, bad credentials and denying policies fail the open on both sides. The refusing side keeps
/// the precise reason (exception and Denied event); the other side learns only the code.
/// </summary>
public sealed class SecureChannelRefusalTests
{
    public static TheoryData<string, bool> IdentityCases => Cases(
        "attestation of another identity",
        "attestation of another channel key",
        "another agent's identity and attestation",
        "attestation expired",
        "attestation from before a key rotation");

    [Theory]
    [MemberData(nameof(IdentityCases))]
    public async Task AnAttestationThatDoesNotBindThePeersStaticKeyToItsIdentityIsAuthenticationFailed(string wrong, bool initiatorIsWrong)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var mallory = await kit.CreateAgentAsync(["role=m"]);
        var honest = await kit.CreateAgentAsync(["role=h"]);
        var other = await kit.CreateAgentAsync(["role=o"]);
        var (presented, detail) = wrong switch
        {
            "attestation of another identity" => (mallory with { Attestation = other.Attestation }, other.Identity.Identifier.ToString()),
            "attestation of another channel key" => (mallory with { Attestation = await mallory.Identity.AttestChannelKeyAsync(kit.CreateChannelKey().PublicKey.ToArray(), TimeSpan.FromDays(1), kit.Time) }, "another channel key"),
            "another agent's identity and attestation" => (mallory with { Identity = other.Identity, Attestation = other.Attestation }, "another channel key"),
            "attestation expired" => (mallory with { Attestation = await mallory.Identity.AttestChannelKeyAsync(mallory.ChannelKey.PublicKey.ToArray(), TimeSpan.FromMinutes(1), kit.Time) }, "AttestationExpired"),
            _ => (mallory with { Identity = await RotateAsync(kit, mallory.Identity) }, "rotated"),
        };
        if (wrong == "attestation expired")
        {
            kit.Time.Advance(TimeSpan.FromMinutes(2));
        }

        await AssertRefusedAsync(kit, presented, honest, initiatorIsWrong, ChannelErrorCode.AuthenticationFailed, [detail], [detail]);
    }

    public static TheoryData<string, bool> CredentialCases => Cases(
        "forged",
        "expired",
        "not yet valid",
        "untrusted issuer",
        "revoked subject",
        "revoked credential",
        "revoked principal",
        "presented by another agent",
        "widened: attribute added",
        "widened: value outside parent",
        "widened: later expiry",
        "widened: earlier start",
        "widened: delegation depth",
        "widened: different principal");

    [Theory]
    [MemberData(nameof(CredentialCases))]
    public async Task ACredentialThatDoesNotHoldIsRefusedWithTheMappedCode(string bad, bool initiatorIsBad)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var honest = await kit.CreateAgentAsync(["role=h"]);
        var now = kit.Time.GetUtcNow();
        ChannelTestKit.Agent presenter;
        ChannelErrorCode code;
        string reason;
        switch (bad)
        {
            case "forged":
                {
                    var agent = await kit.CreateAgentAsync(["role=m"]);
                    var link = agent.Credentials[0].Leaf;
                    var signature = (byte[])link.Signature.Clone();
                    signature[10] ^= 0x01;
                    presenter = agent with { Credentials = [new CredentialChain([new SignedCredential(link.Credential, link.IssuerChangeHash, signature)], [])] };
                    (code, reason) = (ChannelErrorCode.AccessDenied, nameof(CredentialErrorKind.BadSignature));
                    break;
                }

            case "expired":
                presenter = await kit.CreateAgentAsync(["role=m"], credentialLifetime: TimeSpan.FromSeconds(10));
                kit.Time.Advance(TimeSpan.FromMinutes(2));
                (code, reason) = (ChannelErrorCode.CredentialExpired, nameof(CredentialErrorKind.Expired));
                break;
            case "not yet valid":
                {
                    var agent = await kit.CreateAgentAsync();
                    var chain = await CredentialIssuer.IssueAsync(kit.Authority, agent.Identity.Identifier, Principal.Parse("user:mallory"), AttributeSet.Parse(["role=m"]), now.AddMinutes(10), now.AddHours(1), 2);
                    presenter = agent with { Credentials = [chain] };
                    (code, reason) = (ChannelErrorCode.AccessDenied, nameof(CredentialErrorKind.NotYetValid));
                    break;
                }

            case "untrusted issuer":
                {
                    var agent = await kit.CreateAgentAsync();
                    var stranger = await kit.CreateOtherAuthorityAsync();
                    var chain = await CredentialIssuer.IssueAsync(stranger, agent.Identity.Identifier, Principal.Parse("user:mallory"), AttributeSet.Parse(["role=m"]), now, now.AddHours(1), 2);
                    presenter = agent with { Credentials = [chain] };
                    (code, reason) = (ChannelErrorCode.AccessDenied, nameof(CredentialErrorKind.UntrustedIssuer));
                    break;
                }

            case "revoked subject":
                presenter = await kit.CreateAgentAsync(["role=m"]);
                await RevokeAsync(kit, RevocationEntry.ForSubject(presenter.Identity.Identifier));
                (code, reason) = (ChannelErrorCode.CredentialRevoked, nameof(CredentialErrorKind.Revoked));
                break;
            case "revoked credential":
                presenter = await kit.CreateAgentAsync(["role=m"]);
                await RevokeAsync(kit, RevocationEntry.ForCredential(presenter.Credentials[0].Leaf.Credential.Id));
                (code, reason) = (ChannelErrorCode.CredentialRevoked, nameof(CredentialErrorKind.Revoked));
                break;
            case "revoked principal":
                presenter = await kit.CreateAgentAsync(["role=m"], principal: "user:mallory");
                await RevokeAsync(kit, RevocationEntry.ForPrincipal(Principal.Parse("user:mallory")));
                (code, reason) = (ChannelErrorCode.CredentialRevoked, nameof(CredentialErrorKind.Revoked));
                break;
            case "presented by another agent":
                {
                    var agent = await kit.CreateAgentAsync();
                    var victim = await kit.CreateAgentAsync(["role=admin"]);
                    presenter = agent with { Credentials = victim.Credentials };
                    (code, reason) = (ChannelErrorCode.AccessDenied, nameof(CredentialErrorKind.SubjectMismatch));
                    break;
                }

            default:
                {
                    var (agent, kind) = await WidenedAsync(kit, bad);
                    presenter = agent;
                    (code, reason) = (ChannelErrorCode.AccessDenied, $"{nameof(CredentialErrorKind.Widened)} ({kind})");
                    break;
                }
        }

        // The refusing side names the kind of failure and whose credential; the refused side learns neither that
        // nor which credential or link.
        var who = presenter.Identity.Identifier.ToString();
        var credentialId = presenter.Credentials[0].Leaf.Credential.IdText;
        await AssertRefusedAsync(kit, presenter, honest, initiatorIsBad, code, [reason, who], [$": {reason}", who, credentialId, "Link", "credential of"]);
    }

    [Fact]
    public async Task ADelegatedChainThatNarrowsIsAcceptedWithBothHops()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var holder = await kit.CreateAgentAsync(["role=ops", "env=prod", "env=dev"]);
        var delegate_ = await kit.CreateAgentAsync();
        var now = kit.Time.GetUtcNow();
        var chain = await CredentialIssuer.DelegateAsync(holder.Identity, holder.Credentials[0], delegate_.Identity.Identifier, AttributeSet.Parse(["role=ops", "env=prod"]), now, now.AddMinutes(30), 1);
        var presenter = delegate_ with { Credentials = [chain] };
        var bob = await kit.CreateAgentAsync(["role=b"]);

        var (a, b) = await ChannelTestKit.OpenAsync(
            kit.Options(presenter),
            kit.Options(bob, "peer.chain_length == 2 && subject.env == \"prod\" && peer.principal == \"user:alice\""));
        await using (a)
        await using (b)
        {
            var credential = Assert.Single(b.Peer.Credentials);
            Assert.Equal(2, credential.Hops.Length);
            Assert.Equal(kit.Authority.Identifier, credential.Hops[0].Issuer);
            Assert.Equal(holder.Identity.Identifier, credential.Hops[0].Subject);
            Assert.Equal(holder.Identity.Identifier, credential.Hops[1].Issuer);
            Assert.Equal(delegate_.Identity.Identifier, credential.Hops[1].Subject);
            Assert.Equal(chain.Leaf.Credential.IdText, credential.Hops[1].CredentialId);
            Assert.Equal(2, b.Peer.ChainLength);
            Assert.Equal(["prod"], b.Peer.Attributes.Entries["env"]);
            Assert.Equal(now.AddMinutes(30), b.Peer.NotAfter);

            await a.SendAsync("delegated"u8.ToArray());
            using var message = await b.ReceiveAsync();
            Assert.Equal("delegated"u8.ToArray(), message!.Payload.ToArray());
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task APolicyThatDeniesFailsTheOpenAndOnlyTheRefusingSideKnowsWhy(bool initiatorDenies)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=billing"]);
        var bob = await kit.CreateAgentAsync(["role=ledger"]);
        const string Denying = "subject.role == \"auditor\"";
        var events = new ConcurrentQueue<(bool Initiator, ChannelEvent Event)>();
        var accept = SecureChannel.AcceptAsync(
            ChannelTestKit.CreateConnection() is var connection ? connection.Responder : null!,
            kit.Options(bob, initiatorDenies ? "true" : Denying, e => events.Enqueue((false, e))));
        var connect = SecureChannel.ConnectAsync(connection.Initiator, kit.Options(alice, initiatorDenies ? Denying : "true", e => events.Enqueue((true, e))));

        var initiatorFailure = await Assert.ThrowsAsync<SecureChannelException>(() => connect.WaitAsync(ChannelTestKit.Guard));
        var responderFailure = await Assert.ThrowsAsync<SecureChannelException>(() => accept.WaitAsync(ChannelTestKit.Guard));
        var (refuser, told) = initiatorDenies ? (initiatorFailure, responderFailure) : (responderFailure, initiatorFailure);
        Assert.Equal(ChannelErrorCode.AccessDenied, refuser.Code);
        Assert.False(refuser.FromPeer);
        Assert.Contains("access policy denies", refuser.Message, StringComparison.Ordinal);
        Assert.Equal(ChannelErrorCode.AccessDenied, told.Code);
        Assert.True(told.FromPeer);
        Assert.DoesNotContain("policy", told.Message, StringComparison.OrdinalIgnoreCase);

        var denied = events.Where(e => e.Initiator == initiatorDenies && e.Event.Kind == ChannelEventKind.Denied).Select(e => e.Event).Single();
        Assert.Equal(ChannelErrorCode.AccessDenied, denied.Code);
        Assert.Contains("access policy denies", denied.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(events, e => e.Event.Kind == ChannelEventKind.Opened);
    }

    private static TheoryData<string, bool> Cases(params string[] names)
    {
        var data = new TheoryData<string, bool>();
        foreach (var name in names)
        {
            data.Add(name, true);
            data.Add(name, false);
        }

        return data;
    }

    private static async Task AssertRefusedAsync(ChannelTestKit kit, ChannelTestKit.Agent bad, ChannelTestKit.Agent honest, bool badIsInitiator, ChannelErrorCode code, string[] precise, string[] secret)
    {
        var badEvents = new ConcurrentQueue<ChannelEvent>();
        var honestEvents = new ConcurrentQueue<ChannelEvent>();
        var (initiatorEnd, responderEnd) = ChannelTestKit.CreateConnection();
        var (initiatorOptions, responderOptions) = badIsInitiator
            ? (kit.Options(bad, events: badEvents.Enqueue), kit.Options(honest, events: honestEvents.Enqueue))
            : (kit.Options(honest, events: honestEvents.Enqueue), kit.Options(bad, events: badEvents.Enqueue));
        var accept = SecureChannel.AcceptAsync(responderEnd, responderOptions);
        var connect = SecureChannel.ConnectAsync(initiatorEnd, initiatorOptions);

        var initiatorFailure = await Record.ExceptionAsync(() => connect.WaitAsync(ChannelTestKit.Guard));
        var responderFailure = await Record.ExceptionAsync(() => accept.WaitAsync(ChannelTestKit.Guard));
        var refusing = Assert.IsType<SecureChannelException>(badIsInitiator ? responderFailure : initiatorFailure);
        var refused = Assert.IsType<SecureChannelException>(badIsInitiator ? initiatorFailure : responderFailure);

        Assert.Equal(code, refusing.Code);
        Assert.False(refusing.FromPeer);
        foreach (var fragment in precise)
        {
            Assert.Contains(fragment, refusing.Message, StringComparison.Ordinal);
        }

        Assert.Equal(code, refused.Code);
        Assert.True(refused.FromPeer);
        foreach (var fragment in secret)
        {
            Assert.DoesNotContain(fragment, refused.Message, StringComparison.Ordinal);
        }

        var denied = Assert.Single(honestEvents, e => e.Kind == ChannelEventKind.Denied);
        Assert.Equal(code, denied.Code);
        foreach (var fragment in precise)
        {
            Assert.Contains(fragment, denied.Detail, StringComparison.Ordinal);
        }

        var deniedThem = Assert.Single(badEvents, e => e.Kind == ChannelEventKind.Denied);
        Assert.Equal(code, deniedThem.Code);
        foreach (var fragment in secret)
        {
            Assert.DoesNotContain(fragment, deniedThem.Detail ?? string.Empty, StringComparison.Ordinal);
        }

        Assert.DoesNotContain(honestEvents.Concat(badEvents), e => e.Kind == ChannelEventKind.Opened);
    }

    private static async Task RevokeAsync(ChannelTestKit kit, RevocationEntry entry)
    {
        var list = new RevocationList(kit.Authority.Identifier, 1, kit.Time.GetUtcNow(), [entry]);
        var signed = await SignedRevocationList.SignAsync(list, kit.Authority);
        Assert.Equal(RevocationMergeResult.Accepted, kit.Revocations.Merge(signed, kit.Authority.Verified));
    }

    private static async Task<AgentIdentity> RotateAsync(ChannelTestKit kit, AgentIdentity identity)
    {
        kit.Time.Advance(TimeSpan.FromSeconds(1));
        return await identity.RotateAsync(InMemorySigner.Generate(), kit.Time);
    }

    // A holder with a delegable root credential hand-signs a child for a fresh agent that widens it in one way.
    private static async Task<(ChannelTestKit.Agent Agent, WideningKind Kind)> WidenedAsync(ChannelTestKit kit, string how)
    {
        var holder = await kit.CreateAgentAsync(["role=ops", "env=prod"]);
        var subject = await kit.CreateAgentAsync();
        var parent = holder.Credentials[0].Leaf;
        var p = parent.Credential;
        var (principal, attributes, notBefore, notAfter, depth, kind) = how switch
        {
            "widened: attribute added" => (p.Principal, AttributeSet.Parse(["role=ops", "admin=yes"]), p.NotBefore, p.NotAfter, 1, WideningKind.AttributeAdded),
            "widened: value outside parent" => (p.Principal, AttributeSet.Parse(["env=prod", "env=dev"]), p.NotBefore, p.NotAfter, 1, WideningKind.ValueOutsideParent),
            "widened: later expiry" => (p.Principal, AttributeSet.Parse(["role=ops"]), p.NotBefore, p.NotAfter.AddHours(1), 1, WideningKind.LaterExpiry),
            "widened: earlier start" => (p.Principal, AttributeSet.Parse(["role=ops"]), p.NotBefore.AddMinutes(-30), p.NotAfter, 1, WideningKind.EarlierStart),
            "widened: delegation depth" => (p.Principal, AttributeSet.Parse(["role=ops"]), p.NotBefore, p.NotAfter, p.MaxDelegationDepth, WideningKind.DelegationDepthExceeded),
            "widened: different principal" => (Principal.Parse("user:root"), AttributeSet.Parse(["role=ops"]), p.NotBefore, p.NotAfter, 1, WideningKind.DifferentPrincipal),
            _ => throw new ArgumentOutOfRangeException(nameof(how)),
        };
        var child = new Credential(Credential.NewId(), holder.Identity.Identifier, subject.Identity.Identifier, principal, attributes, notBefore, notAfter, depth, new ParentReference(p.Id, parent.SignedHash));
        var signature = await SignatureDomain.SignAsync(holder.Identity.Signer, SignatureDomain.Credential, child.Encoded);
        var chain = new CredentialChain([parent, new SignedCredential(child, holder.Identity.Verified.Current.ChangeHash, signature)], [holder.Identity.History]);
        return (subject with { Credentials = [chain] }, kind);
    }
}
