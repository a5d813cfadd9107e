using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Tests.Identity;
using static SecureChannels.Protocol.Tests.Identity.IdentityTestKit;

namespace SecureChannels.Protocol.Tests.Credentials;

/// <summary>Trusting authorities, and updating a trusted authority's history: only Newer is accepted.</summary>
public sealed class TrustAnchorsTests
{
    [Fact]
    public async Task UpdateAcceptsANewerHistoryOfATrustedAuthority()
    {
        var time = NewClock();
        var authority = await NewIdentityAsync(time);
        var anchors = new TrustAnchors().Trust(authority.Verified, ["role"]);
        var rotated = await authority.RotateAsync(NewSigner(), time);

        anchors.Update(IdentityHistory.Decode(rotated.History.Encoded));

        var anchor = anchors.Find(authority.Identifier);
        Assert.NotNull(anchor);
        Assert.Equal(rotated.History.Encoded, anchor.Identity.History.Encoded);
        Assert.Equal(rotated.Verified.PublicKey.ToArray(), anchor.Identity.PublicKey.ToArray());
        Assert.True(anchor.Covers("role"));
        Assert.False(anchor.Covers("env"));
    }

    [Fact]
    public async Task UpdateRefusesAnOlderHistoryAsStaleAndKeepsTheNewerOne()
    {
        var time = NewClock();
        var authority = await NewIdentityAsync(time);
        var rotated = await authority.RotateAsync(NewSigner(), time);
        var anchors = new TrustAnchors().Trust(rotated.Verified);

        var error = Assert.Throws<IdentityException>(() => anchors.Update(authority.History));

        Assert.Equal(IdentityErrorKind.Stale, error.Kind);
        Assert.Equal(rotated.History.Encoded, anchors.Find(authority.Identifier)!.Identity.History.Encoded);
    }

    [Fact]
    public async Task UpdateRefusesAForkedHistoryAndKeepsTheTrustedOne()
    {
        var time = NewClock();
        var authority = await NewIdentityAsync(time);
        var legitimate = await authority.RotateAsync(NewSigner(), time);
        var fork = await authority.RotateAsync(NewSigner(), time);
        var longerFork = await fork.RotateAsync(NewSigner(), time);
        var anchors = new TrustAnchors().Trust(legitimate.Verified);

        Assert.Equal(IdentityErrorKind.Forked, Assert.Throws<IdentityException>(() => anchors.Update(fork.History)).Kind);
        Assert.Equal(IdentityErrorKind.Forked, Assert.Throws<IdentityException>(() => anchors.Update(longerFork.History)).Kind);
        Assert.Equal(legitimate.History.Encoded, anchors.Find(authority.Identifier)!.Identity.History.Encoded);
    }

    [Fact]
    public async Task UpdateWithTheSameHistoryChangesNothing()
    {
        var time = NewClock();
        var authority = await NewIdentityAsync(time);
        var anchors = new TrustAnchors().Trust(authority.Verified);
        var before = anchors.Find(authority.Identifier);

        anchors.Update(IdentityHistory.Decode(authority.History.Encoded));

        Assert.Same(before, anchors.Find(authority.Identifier));
    }

    [Fact]
    public async Task UpdateRefusesTheHistoryOfAnUntrustedIdentity()
    {
        var time = NewClock();
        var authority = await NewIdentityAsync(time);
        var stranger = await NewIdentityAsync(time);
        var anchors = new TrustAnchors().Trust(authority.Verified);

        Assert.Equal(IdentityErrorKind.IdentifierMismatch, Assert.Throws<IdentityException>(() => anchors.Update(stranger.History)).Kind);
        Assert.Null(anchors.Find(stranger.Identifier));
    }

    [Fact]
    public async Task UpdateRefusesAHistoryThatDoesNotVerify()
    {
        var time = NewClock();
        var authority = await NewIdentityAsync(time);
        var anchors = new TrustAnchors().Trust(authority.Verified);
        var attacker = NewSigner();
        var forged = Append(authority, await HandRotationAsync(authority, attacker, Start.AddHours(1), attacker));

        Assert.Equal(IdentityErrorKind.BadSignature, Assert.Throws<IdentityException>(() => anchors.Update(forged)).Kind);
        Assert.Equal(authority.History.Encoded, anchors.Find(authority.Identifier)!.Identity.History.Encoded);
    }

    [Fact]
    public async Task TrustingAgainReplacesTheAttributeScope()
    {
        var time = NewClock();
        var authority = await NewIdentityAsync(time);
        var anchors = new TrustAnchors().Trust(authority.Verified, ["role"]);

        anchors.Trust(authority.Verified);

        Assert.Single(anchors.All);
        Assert.True(anchors.Find(authority.Identifier)!.Covers("anything"));
        Assert.Null(anchors.Find(default));
    }
}
