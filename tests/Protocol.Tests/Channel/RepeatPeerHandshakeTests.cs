using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using static SecureChannels.Protocol.Tests.Identity.IdentityTestKit;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>
/// A handshake with a peer seen before: the verifier's cache spares every Ed25519 verification of the peer's identity
/// history, key attestation and credentials, yet whatever depends on time or state (expiry, revocation, trust anchors,
/// the binding to this handshake's static key) still refuses, and tampered bytes miss and are refused.
/// </summary>
public sealed class RepeatPeerHandshakeTests
{
    [Fact]
    public async Task ARepeatHandshakeWithTheSamePeerVerifiesNoSignature()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var aliceVerifier = new CredentialVerifier(kit.Anchors, kit.Revocations, kit.Time);
        var bobVerifier = new CredentialVerifier(kit.Anchors, kit.Revocations, kit.Time);

        // Each side verifies the other's one-change history, attestation and one-link chain: three signatures each.
        Assert.Equal(6, await CountVerificationsAsync(() => OpenAndCloseAsync(kit, alice, aliceVerifier, bob, bobVerifier)));
        // Fresh options, as a long-running agent makes per channel; the verifier, and so its cache, is the same.
        Assert.Equal(0, await CountVerificationsAsync(() => OpenAndCloseAsync(kit, alice, aliceVerifier, bob, bobVerifier)));

        foreach (var cache in new[] { aliceVerifier.Cache, bobVerifier.Cache })
        {
            Assert.Equal((3, 3, 3), (cache.Hits, cache.Misses, cache.Count));
        }
    }

    [Theory]
    [InlineData("the policy denies its attributes")]
    [InlineData("it presents no credential")]
    [InlineData("the policy denies its delegated chain")]
    public async Task AStrangerRefusedAtTheHandshakeLeavesNothingInTheCache(string why)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var judge = await JudgeAsync(kit);
        const string Policy = "subject.role == \"p\"";
        var friend = await kit.CreateAgentAsync(["role=p"]);
        await OpenAndCloseAsync(kit, friend, new CredentialVerifier(kit.Anchors, kit.Revocations, kit.Time), judge.Agent, judge.Verifier, Policy);
        var remembered = judge.Verifier.Cache.Count;
        Assert.Equal(3, remembered);

        // Valid identities and attestations cost nothing to make: were they remembered before the verdict, a stream
        // of refused strangers would push the friend out. Each stranger's history and attestation verify; it is refused.
        for (var i = 0; i < 5; i++)
        {
            var stranger = await kit.CreateAgentAsync(why == "it presents no credential" ? null : ["role=intruder"]);
            if (why == "the policy denies its delegated chain")
            {
                // The delegating issuer's history travels in the chain and verifies too: also held back.
                var holder = await kit.CreateAgentAsync(["role=intruder"]);
                var now = kit.Time.GetUtcNow();
                var chain = await CredentialIssuer.DelegateAsync(holder.Identity, holder.Credentials[0], stranger.Identity.Identifier, AttributeSet.Parse(["role=intruder"]), now, now.AddMinutes(30), 1);
                stranger = stranger with { Credentials = [chain] };
            }

            var (initiatorEnd, responderEnd) = ChannelTestKit.CreateConnection();
            var accept = SecureChannel.AcceptAsync(responderEnd, kit.Options(judge.Agent, Policy, settings: new() { Verifier = judge.Verifier }));
            var connect = SecureChannel.ConnectAsync(initiatorEnd, kit.Options(stranger));
            var refused = await Assert.ThrowsAsync<SecureChannelException>(() => accept.WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(ChannelErrorCode.AccessDenied, refused.Code);
            await Assert.ThrowsAsync<SecureChannelException>(() => connect.WaitAsync(ChannelTestKit.Guard));
        }

        Assert.Equal(remembered, judge.Verifier.Cache.Count);

        // The friend is still known: only its own (new) verifier checks signatures, the judge's three.
        Assert.Equal(3, await CountVerificationsAsync(() => OpenAndCloseAsync(kit, friend, new CredentialVerifier(kit.Anchors, kit.Revocations, kit.Time), judge.Agent, judge.Verifier, Policy)));
    }

    public static TheoryData<string> StillRefused =>
    [
        "its credential expired",
        "its credential was revoked",
        "its authority is no longer trusted",
        "its attestation expired",
        "it handshakes with another static key",
    ];

    [Theory]
    [MemberData(nameof(StillRefused))]
    public async Task ARepeatPeerIsStillRefusedWhenWhatCanChangeNoLongerHolds(string change)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var judge = await JudgeAsync(kit);
        var peer = await kit.CreateAgentAsync(["role=p"], credentialLifetime: TimeSpan.FromHours(1));
        if (change == "its attestation expired")
        {
            peer = peer with { Attestation = await peer.Identity.AttestChannelKeyAsync(peer.ChannelKey.PublicKey.ToArray(), TimeSpan.FromMinutes(10), kit.Time) };
        }

        var peerVerifier = new CredentialVerifier(kit.Anchors, kit.Revocations, kit.Time);
        await OpenAndCloseAsync(kit, peer, peerVerifier, judge.Agent, judge.Verifier);

        ChannelErrorCode expected;
        switch (change)
        {
            case "its credential expired":
                kit.Time.Advance(TimeSpan.FromHours(2));
                expected = ChannelErrorCode.CredentialExpired;
                break;
            case "its credential was revoked":
                var list = new RevocationList(kit.Authority.Identifier, 1, kit.Time.GetUtcNow(), [RevocationEntry.ForCredential(peer.Credentials[0].Leaf.Credential.Id)]);
                kit.Revocations.Merge(await SignedRevocationList.SignAsync(list, kit.Authority), kit.Authority.Verified);
                expected = ChannelErrorCode.CredentialRevoked;
                break;
            case "its authority is no longer trusted":
                Assert.True(judge.Anchors.Remove(kit.Authority.Identifier));
                expected = ChannelErrorCode.AccessDenied;
                break;
            case "its attestation expired":
                kit.Time.Advance(TimeSpan.FromMinutes(11));
                expected = ChannelErrorCode.AuthenticationFailed;
                break;
            default:
                peer = peer with { ChannelKey = kit.CreateChannelKey() };
                expected = ChannelErrorCode.AuthenticationFailed;
                break;
        }

        // Every item the judge looks up is a hit: no signature is verified, and the refusal still comes.
        var refusal = (SecureChannelException?)null;
        Assert.Equal(0, await CountVerificationsAsync(async () => refusal = await RefusedAsync(kit, peer, peerVerifier, judge)));
        Assert.Equal(expected, refusal!.Code);
        Assert.Equal(3, judge.Verifier.Cache.Misses);
    }

    [Theory]
    [InlineData("attestation", ChannelErrorCode.AuthenticationFailed)]
    [InlineData("credential", ChannelErrorCode.AccessDenied)]
    public async Task ATamperedSignatureFromARepeatPeerMissesAndIsRefused(string tampered, ChannelErrorCode expected)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var judge = await JudgeAsync(kit);
        var peer = await kit.CreateAgentAsync(["role=p"]);
        var peerVerifier = new CredentialVerifier(kit.Anchors, kit.Revocations, kit.Time);
        await OpenAndCloseAsync(kit, peer, peerVerifier, judge.Agent, judge.Verifier);

        if (tampered == "attestation")
        {
            peer = peer with { Attestation = peer.Attestation with { Signature = FlipBit(peer.Attestation.Signature, 5) } };
        }
        else
        {
            var link = peer.Credentials[0].Leaf;
            peer = peer with { Credentials = [new CredentialChain([new SignedCredential(link.Credential, link.IssuerChangeHash, FlipBit(link.Signature, 5))], [])] };
        }

        var refusal = await RefusedAsync(kit, peer, peerVerifier, judge);

        Assert.Equal(expected, refusal.Code);
        Assert.Equal(4, judge.Verifier.Cache.Misses);
        Assert.Equal(3, judge.Verifier.Cache.Count);
    }

    // The responder under test: its own anchors (so removing one concerns only it) and its own verifier; the kit's
    // revocation registry, which the peer's verifier shares harmlessly (nothing of the judge is ever revoked).
    private static async Task<Judge> JudgeAsync(ChannelTestKit kit)
    {
        var anchors = new TrustAnchors().Trust(kit.Authority.Verified);
        var agent = await kit.CreateAgentAsync(["role=j"], credentialLifetime: TimeSpan.FromDays(3));
        return new Judge(agent, anchors, new CredentialVerifier(anchors, kit.Revocations, kit.Time));
    }

    private static async Task OpenAndCloseAsync(ChannelTestKit kit, ChannelTestKit.Agent initiator, CredentialVerifier initiatorVerifier, ChannelTestKit.Agent responder, CredentialVerifier responderVerifier, string responderPolicy = "true")
    {
        var (a, b) = await ChannelTestKit.OpenAsync(
            kit.Options(initiator, settings: new() { Verifier = initiatorVerifier }),
            kit.Options(responder, responderPolicy, settings: new() { Verifier = responderVerifier }));
        await a.DisposeAsync();
        await b.DisposeAsync();
    }

    // The peer connects, the judge refuses it after message 3; the peer learns the same code.
    private static async Task<SecureChannelException> RefusedAsync(ChannelTestKit kit, ChannelTestKit.Agent peer, CredentialVerifier peerVerifier, Judge judge)
    {
        var (initiatorEnd, responderEnd) = ChannelTestKit.CreateConnection();
        var accept = SecureChannel.AcceptAsync(responderEnd, kit.Options(judge.Agent, settings: new() { Verifier = judge.Verifier }));
        var connect = SecureChannel.ConnectAsync(initiatorEnd, kit.Options(peer, settings: new() { Verifier = peerVerifier }));

        var refusing = Assert.IsType<SecureChannelException>(await Record.ExceptionAsync(() => accept.WaitAsync(ChannelTestKit.Guard)));
        var refused = Assert.IsType<SecureChannelException>(await Record.ExceptionAsync(() => connect.WaitAsync(ChannelTestKit.Guard)));
        Assert.False(refusing.FromPeer);
        Assert.True(refused.FromPeer);
        Assert.Equal(refusing.Code, refused.Code);
        return refusing;
    }

    private sealed record Judge(ChannelTestKit.Agent Agent, TrustAnchors Anchors, CredentialVerifier Verifier);
}
