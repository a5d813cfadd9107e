using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using static SecureChannels.Protocol.Tests.Credentials.CredentialWorld;

namespace SecureChannels.Protocol.Tests.Credentials;

/// <summary>
/// A delegated credential may only narrow its parent. Every way of widening is refused with its
/// <see cref="WideningKind"/>: by <see cref="CredentialIssuer.DelegateAsync"/> at issue time, and by the
/// verifier for a hand-built chain that bypassed the issuer.
/// </summary>
public sealed class DelegationWideningTests
{
    public enum WideningAttempt
    {
        AttributeAdded,
        ValueOutsideParent,
        LaterExpiry,
        EarlierStart,
        DepthEqualToParents,
        DepthAboveParents,
        ParentAllowsNoDelegation,
    }

    private sealed record Attempt(WideningKind Expected, int ParentDepth, string[]? Attributes, TimeSpan StartShift, TimeSpan EndShift, int ChildDepth);

    private static Attempt AttemptFor(WideningAttempt widening) => widening switch
    {
        WideningAttempt.AttributeAdded => new(WideningKind.AttributeAdded, 2, ["env=prod", "admin=yes"], TimeSpan.Zero, TimeSpan.Zero, 1),
        WideningAttempt.ValueOutsideParent => new(WideningKind.ValueOutsideParent, 2, ["env=prod", "env=dev"], TimeSpan.Zero, TimeSpan.Zero, 1),
        WideningAttempt.LaterExpiry => new(WideningKind.LaterExpiry, 2, null, TimeSpan.Zero, TimeSpan.FromSeconds(1), 1),
        WideningAttempt.EarlierStart => new(WideningKind.EarlierStart, 2, null, TimeSpan.FromSeconds(-1), TimeSpan.Zero, 1),
        WideningAttempt.DepthEqualToParents => new(WideningKind.DelegationDepthExceeded, 2, null, TimeSpan.Zero, TimeSpan.Zero, 2),
        WideningAttempt.DepthAboveParents => new(WideningKind.DelegationDepthExceeded, 2, null, TimeSpan.Zero, TimeSpan.Zero, 5),
        WideningAttempt.ParentAllowsNoDelegation => new(WideningKind.DelegationDepthExceeded, 0, null, TimeSpan.Zero, TimeSpan.Zero, 0),
        _ => throw new ArgumentOutOfRangeException(nameof(widening)),
    };

    [Theory]
    [InlineData(WideningAttempt.AttributeAdded)]
    [InlineData(WideningAttempt.ValueOutsideParent)]
    [InlineData(WideningAttempt.LaterExpiry)]
    [InlineData(WideningAttempt.EarlierStart)]
    [InlineData(WideningAttempt.DepthEqualToParents)]
    [InlineData(WideningAttempt.DepthAboveParents)]
    [InlineData(WideningAttempt.ParentAllowsNoDelegation)]
    public async Task IssuerRefusesEachWideningWithItsReason(WideningAttempt widening)
    {
        var attempt = AttemptFor(widening);
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var held = await world.IssueAsync(holder, maxDelegationDepth: attempt.ParentDepth);
        var parent = held.Leaf.Credential;

        var error = await Assert.ThrowsAsync<CredentialException>(() => CredentialIssuer.DelegateAsync(
            holder,
            held,
            subject.Identifier,
            attempt.Attributes is null ? parent.Attributes : Attributes(attempt.Attributes),
            parent.NotBefore + attempt.StartShift,
            parent.NotAfter + attempt.EndShift,
            attempt.ChildDepth));

        Assert.Equal(CredentialErrorKind.Widened, error.Kind);
        Assert.Equal(attempt.Expected, error.Widening);
        Assert.Contains("Link 1 widens", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(WideningAttempt.AttributeAdded)]
    [InlineData(WideningAttempt.ValueOutsideParent)]
    [InlineData(WideningAttempt.LaterExpiry)]
    [InlineData(WideningAttempt.EarlierStart)]
    [InlineData(WideningAttempt.DepthEqualToParents)]
    [InlineData(WideningAttempt.DepthAboveParents)]
    [InlineData(WideningAttempt.ParentAllowsNoDelegation)]
    public async Task VerifierRefusesEachWideningOfAHandBuiltChainWithItsReason(WideningAttempt widening)
    {
        var attempt = AttemptFor(widening);
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var held = await world.IssueAsync(holder, maxDelegationDepth: attempt.ParentDepth);
        var parent = held.Leaf.Credential;
        var child = Child(
            held.Leaf,
            holder.Identifier,
            subject.Identifier,
            attributes: attempt.Attributes is null ? null : Attributes(attempt.Attributes),
            notBefore: parent.NotBefore + attempt.StartShift,
            notAfter: parent.NotAfter + attempt.EndShift,
            maxDelegationDepth: attempt.ChildDepth);

        var chain = await AppendAsync(held, holder, child);

        var error = world.VerifyFails(chain, CredentialErrorKind.Widened);
        Assert.Equal(attempt.Expected, error.Widening);
        Assert.Contains("Link 1 widens", error.Message, StringComparison.Ordinal);
        Assert.False(world.Verifier.IsStillValid(chain, out var reason));
        Assert.Equal(attempt.Expected, reason!.Widening);
    }

    [Fact]
    public async Task VerifierRefusesAHandBuiltChildActingForAnotherPrincipalAsDifferentPrincipal()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var held = await world.IssueAsync(holder, principal: Principal.Parse("user:alice"));

        foreach (var other in new[] { Principal.Parse("user:mallory"), Principal.Parse("team:alice"), Principal.Self })
        {
            var chain = await AppendAsync(held, holder, Child(held.Leaf, holder.Identifier, subject.Identifier, principal: other));

            var error = world.VerifyFails(chain, CredentialErrorKind.Widened);
            Assert.Equal(WideningKind.DifferentPrincipal, error.Widening);
        }
    }

    [Fact]
    public async Task IssuerAlwaysGivesTheChildItsParentsPrincipal()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var held = await world.IssueAsync(holder, principal: Principal.Parse("system:ci"));

        var delegated = await DelegateAsync(holder, held, subject);

        Assert.Equal(Principal.Parse("system:ci"), delegated.Leaf.Credential.Principal);
        Assert.Equal(Principal.Parse("system:ci"), world.Verifier.Verify(delegated).Principal);
    }

    [Fact]
    public async Task HandBuiltChildThatOnlyNarrowsVerifies()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var held = await world.IssueAsync(holder, maxDelegationDepth: 2);
        var parent = held.Leaf.Credential;
        var child = Child(held.Leaf, holder.Identifier, subject.Identifier, attributes: Attributes("env=staging"), notBefore: parent.NotBefore.AddMinutes(1), notAfter: parent.NotAfter.AddMinutes(-1), maxDelegationDepth: 0);

        var verified = world.Verifier.Verify(await AppendAsync(held, holder, child));

        Assert.Equal(Attributes("env=staging"), verified.Attributes);
    }

    [Fact]
    public async Task ValueDroppedByOneLinkCannotBeRegainedByALaterLink()
    {
        var world = await CreateAsync();
        var a = await world.NewAgentAsync();
        var b = await world.NewAgentAsync();
        var c = await world.NewAgentAsync();
        var root = await world.IssueAsync(a, ["env=prod", "env=staging", "role=billing"], maxDelegationDepth: 3);
        var narrowed = await DelegateAsync(a, root, b, ["env=prod", "role=billing"]);

        // "env=staging" is in the root but not in link 1, which is the parent that counts.
        var issueError = await Assert.ThrowsAsync<CredentialException>(() => DelegateAsync(b, narrowed, c, ["env=staging"]));
        var handBuilt = await AppendAsync(narrowed, b, Child(narrowed.Leaf, b.Identifier, c.Identifier, attributes: Attributes("env=staging")));
        var verifyError = world.VerifyFails(handBuilt, CredentialErrorKind.Widened);

        Assert.Equal(WideningKind.ValueOutsideParent, issueError.Widening);
        Assert.Equal(WideningKind.ValueOutsideParent, verifyError.Widening);
        Assert.Contains("Link 2 widens", verifyError.Message, StringComparison.Ordinal);
        Assert.Contains("env=staging", verifyError.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AttributeDroppedByOneLinkCannotBeReaddedByALaterLink()
    {
        var world = await CreateAsync();
        var a = await world.NewAgentAsync();
        var b = await world.NewAgentAsync();
        var c = await world.NewAgentAsync();
        var root = await world.IssueAsync(a, ["env=prod", "role=billing"], maxDelegationDepth: 3);
        var narrowed = await DelegateAsync(a, root, b, ["env=prod"]);

        var handBuilt = await AppendAsync(narrowed, b, Child(narrowed.Leaf, b.Identifier, c.Identifier, attributes: Attributes("env=prod", "role=billing")));

        var error = world.VerifyFails(handBuilt, CredentialErrorKind.Widened);
        Assert.Equal(WideningKind.AttributeAdded, error.Widening);
        Assert.Contains("'role'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DepthAllowsExactlyAsManyFurtherHopsAsTheRootGrants()
    {
        var world = await CreateAsync();
        var a = await world.NewAgentAsync();
        var b = await world.NewAgentAsync();
        var c = await world.NewAgentAsync();
        var d = await world.NewAgentAsync();
        var root = await world.IssueAsync(a, maxDelegationDepth: 2);
        var one = await DelegateAsync(a, root, b, maxDelegationDepth: 1);
        var two = await DelegateAsync(b, one, c, maxDelegationDepth: 0);

        Assert.Equal(3, world.Verifier.Verify(two).ChainLength);
        var error = await Assert.ThrowsAsync<CredentialException>(() => DelegateAsync(c, two, d, maxDelegationDepth: 0));
        Assert.Equal(WideningKind.DelegationDepthExceeded, error.Widening);
        var handBuilt = await AppendAsync(two, c, Child(two.Leaf, c.Identifier, d.Identifier, maxDelegationDepth: 0));
        Assert.Equal(WideningKind.DelegationDepthExceeded, world.VerifyFails(handBuilt, CredentialErrorKind.Widened).Widening);
    }

    [Fact]
    public async Task ChildWideningInSeveralWaysIsReportedByTheFirstRuleInTheDocumentedOrder()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var held = await world.IssueAsync(holder, maxDelegationDepth: 1);
        var parent = held.Leaf.Credential;

        async Task<WideningKind> WideningOf(Credential child) =>
            world.VerifyFails(await AppendAsync(held, holder, child), CredentialErrorKind.Widened).Widening;

        var everything = Child(held.Leaf, holder.Identifier, subject.Identifier, Principal.Parse("user:bob"), Attributes("admin=yes"), parent.NotBefore.AddSeconds(-1), parent.NotAfter.AddSeconds(1), 1);
        Assert.Equal(WideningKind.DelegationDepthExceeded, await WideningOf(everything));
        Assert.Equal(WideningKind.DifferentPrincipal, await WideningOf(Child(held.Leaf, holder.Identifier, subject.Identifier, Principal.Parse("user:bob"), Attributes("admin=yes"), parent.NotBefore.AddSeconds(-1), parent.NotAfter.AddSeconds(1), 0)));
        Assert.Equal(WideningKind.AttributeAdded, await WideningOf(Child(held.Leaf, holder.Identifier, subject.Identifier, null, Attributes("admin=yes"), parent.NotBefore.AddSeconds(-1), parent.NotAfter.AddSeconds(1), 0)));
        Assert.Equal(WideningKind.ValueOutsideParent, await WideningOf(Child(held.Leaf, holder.Identifier, subject.Identifier, null, Attributes("env=dev"), parent.NotBefore.AddSeconds(-1), parent.NotAfter.AddSeconds(1), 0)));
        Assert.Equal(WideningKind.LaterExpiry, await WideningOf(Child(held.Leaf, holder.Identifier, subject.Identifier, null, null, parent.NotBefore.AddSeconds(-1), parent.NotAfter.AddSeconds(1), 0)));
        Assert.Equal(WideningKind.EarlierStart, await WideningOf(Child(held.Leaf, holder.Identifier, subject.Identifier, null, null, parent.NotBefore.AddSeconds(-1), null, 0)));
    }

    [Fact]
    public async Task WideningIsReportedEvenWhenTheWideningLinkIsOtherwiseValidlySigned()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var held = await world.IssueAsync(holder);
        var child = Child(held.Leaf, holder.Identifier, subject.Identifier, attributes: Attributes("env=prod", "superuser=yes"));
        var chain = await AppendAsync(held, holder, child);

        // The signature and history are fine: the refusal is about authority, not integrity.
        Assert.True(SignatureDomain.Verify(holder.Verified.PublicKey, SignatureDomain.Credential, child.Encoded, chain.Leaf.Signature));
        Assert.Equal(WideningKind.AttributeAdded, world.VerifyFails(chain, CredentialErrorKind.Widened).Widening);
    }
}
