using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Tests.Identity;
using static SecureChannels.Protocol.Tests.Credentials.CredentialWorld;

namespace SecureChannels.Protocol.Tests.Credentials;

/// <summary>Issuing root credentials, delegating them, and what a verifier concludes from a valid chain.</summary>
public sealed class CredentialVerificationTests
{
    [Fact]
    public async Task RootCredentialVerifiesToItsSubjectPrincipalAuthorityHopAttributesAndValidity()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();

        var chain = await world.IssueAsync(agent, ["role=billing", "env=prod"], Principal.Parse("team:payments"));
        var verified = world.Verifier.Verify(chain, agent.Identifier);

        var root = chain.Leaf.Credential;
        Assert.Equal(agent.Identifier, verified.Subject);
        Assert.Equal(Principal.Parse("team:payments"), verified.Principal);
        Assert.Equal(world.Authority.Identifier, verified.Authority);
        var hop = Assert.Single(verified.Hops);
        Assert.Equal(new DelegationHop(world.Authority.Identifier, agent.Identifier, root.IdText), hop);
        Assert.Equal(1, verified.ChainLength);
        Assert.Equal(Attributes("role=billing", "env=prod"), verified.Attributes);
        Assert.Equal(world.Now, verified.NotBefore);
        Assert.Equal(world.Now + DefaultLifetime, verified.NotAfter);
        Assert.Null(root.Parent);
        Assert.Equal(world.Authority.Identifier, root.Issuer);
        Assert.Equal(world.Authority.Verified.Current.ChangeHash, chain.Leaf.IssuerChangeHash);
        Assert.Empty(chain.IssuerHistories);
    }

    [Fact]
    public async Task OneHopDelegationVerifiesWithBothHopsInOrderAndTheChildsAttributes()
    {
        var world = await CreateAsync();
        var orchestrator = await world.NewAgentAsync();
        var worker = await world.NewAgentAsync();
        var root = await world.IssueAsync(orchestrator);

        var delegated = await DelegateAsync(orchestrator, root, worker, ["env=prod", "role=billing"], notAfter: world.Now.AddHours(2));
        var verified = world.Verifier.Verify(delegated, worker.Identifier);

        Assert.Equal(worker.Identifier, verified.Subject);
        Assert.Equal(Alice, verified.Principal);
        Assert.Equal(world.Authority.Identifier, verified.Authority);
        Assert.Equal(
            [
                new DelegationHop(world.Authority.Identifier, orchestrator.Identifier, root.Leaf.Credential.IdText),
                new DelegationHop(orchestrator.Identifier, worker.Identifier, delegated.Leaf.Credential.IdText),
            ],
            verified.Hops.ToArray());
        Assert.Equal(Attributes("env=prod", "role=billing"), verified.Attributes);
        Assert.Equal(world.Now.AddHours(2), verified.NotAfter);
        Assert.Equal(2, delegated.Credentials.Length);
        Assert.Equal(orchestrator.History.Encoded, Assert.Single(delegated.IssuerHistories).Encoded);
        Assert.Equal(new ParentReference(root.Leaf.Credential.Id, root.Leaf.SignedHash), delegated.Leaf.Credential.Parent);
    }

    [Fact]
    public async Task ThreeHopDelegationVerifiesWithEveryHopInOrderAndTheNarrowestValidity()
    {
        var world = await CreateAsync();
        var a = await world.NewAgentAsync();
        var b = await world.NewAgentAsync();
        var c = await world.NewAgentAsync();
        var d = await world.NewAgentAsync();
        var start = world.Now;
        var chainA = await world.IssueAsync(a, maxDelegationDepth: 3);

        var chainB = await DelegateAsync(a, chainA, b, ["env=prod", "env=staging", "role=billing"], maxDelegationDepth: 2, notBefore: start.AddMinutes(10));
        var chainC = await DelegateAsync(b, chainB, c, ["env=prod", "role=billing"], maxDelegationDepth: 1, notAfter: start.AddHours(4));
        var chainD = await DelegateAsync(c, chainC, d, ["env=prod"], maxDelegationDepth: 0, notAfter: start.AddHours(3));
        world.Time.Advance(TimeSpan.FromMinutes(30));
        var verified = world.Verifier.Verify(chainD, d.Identifier);

        Assert.Equal(4, verified.ChainLength);
        Assert.Equal(
            new[] { (world.Authority.Identifier, a.Identifier), (a.Identifier, b.Identifier), (b.Identifier, c.Identifier), (c.Identifier, d.Identifier) },
            verified.Hops.Select(h => (h.Issuer, h.Subject)));
        Assert.Equal(chainD.Credentials.Select(l => l.Credential.IdText), verified.Hops.Select(h => h.CredentialId));
        Assert.Equal(Attributes("env=prod"), verified.Attributes);
        Assert.Equal(start.AddMinutes(10), verified.NotBefore);
        Assert.Equal(start.AddHours(3), verified.NotAfter);
        Assert.Equal(d.Identifier, verified.Subject);
        Assert.Equal([a.History.Encoded, b.History.Encoded, c.History.Encoded], chainD.IssuerHistories.Select(h => h.Encoded));

        // Every prefix verifies for its own holder.
        Assert.Equal(c.Identifier, world.Verifier.Verify(chainC, c.Identifier).Subject);
        Assert.Equal(b.Identifier, world.Verifier.Verify(chainB, b.Identifier).Subject);
    }

    [Fact]
    public async Task ChildWithExactlyTheParentsAttributesAndValidityIsANarrowingNotAWidening()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var root = await world.IssueAsync(holder, maxDelegationDepth: 1);

        var delegated = await DelegateAsync(holder, root, subject, maxDelegationDepth: 0);

        Assert.Equal(root.Leaf.Credential.Attributes, world.Verifier.Verify(delegated).Attributes);
    }

    [Fact]
    public async Task ChainOfTheMaximumLengthVerifiesAndCannotBeExtended()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var chain = await world.IssueAsync(holder, maxDelegationDepth: CredentialLimits.MaxChainLength - 1);
        for (var i = 1; i < CredentialLimits.MaxChainLength; i++)
        {
            var next = await world.NewAgentAsync();
            chain = await DelegateAsync(holder, chain, next);
            holder = next;
        }

        Assert.Equal(CredentialLimits.MaxChainLength, world.Verifier.Verify(chain, holder.Identifier).ChainLength);
        Assert.Equal(0, chain.Leaf.Credential.MaxDelegationDepth);
        var error = await Assert.ThrowsAsync<CredentialException>(() => DelegateAsync(holder, chain, holder, maxDelegationDepth: 0));
        Assert.Equal(CredentialErrorKind.ChainTooLong, error.Kind);
        Assert.Equal(CredentialLimits.MaxChainLength, CredentialChain.Decode(chain.Encoded).Credentials.Length);
    }

    [Fact]
    public async Task AuthorityTrustedForSomeAttributesContributesOnlyThoseAttributes()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var anchors = new TrustAnchors().Trust(world.Authority.Verified, ["role"]);
        var verifier = new CredentialVerifier(anchors, world.Revocations, world.Time);
        var chain = await world.IssueAsync(agent, ["role=billing", "env=prod", "region=eu"]);

        var verified = verifier.Verify(chain);

        Assert.Equal(Attributes("role=billing"), verified.Attributes);
        Assert.Equal(Attributes("role=billing", "env=prod", "region=eu"), world.Verifier.Verify(chain).Attributes);
    }

    [Fact]
    public async Task AuthorityTrustedForNoAttributeStillVerifiesButGrantsNothing()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var verifier = new CredentialVerifier(new TrustAnchors().Trust(world.Authority.Verified, []), world.Revocations, world.Time);
        var chain = await world.IssueAsync(agent);

        var verified = verifier.Verify(chain);

        Assert.Equal(0, verified.Attributes.Count);
        Assert.Equal(agent.Identifier, verified.Subject);
    }

    [Fact]
    public async Task AttributeFilterAppliesToTheLeafOfADelegatedChain()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var verifier = new CredentialVerifier(new TrustAnchors().Trust(world.Authority.Verified, ["env"]), world.Revocations, world.Time);
        var root = await world.IssueAsync(holder);
        var delegated = await DelegateAsync(holder, root, subject, ["env=prod", "role=support"]);

        Assert.Equal(Attributes("env=prod"), verifier.Verify(delegated).Attributes);
    }

    [Fact]
    public async Task CredentialFromAnUntrustedIssuerIsRefusedAsUntrustedIssuer()
    {
        var world = await CreateAsync();
        var stranger = await world.NewAgentAsync();
        var agent = await world.NewAgentAsync();

        var chain = await world.IssueAsync(agent, issuer: stranger);

        var error = world.VerifyFails(chain, CredentialErrorKind.UntrustedIssuer);
        Assert.Contains(stranger.Identifier.ToString(), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CredentialsOfEitherOfTwoTrustedAuthoritiesVerify()
    {
        var world = await CreateAsync();
        var second = await world.NewAgentAsync();
        world.Anchors.Trust(second.Verified);
        var agent = await world.NewAgentAsync();

        Assert.Equal(world.Authority.Identifier, world.Verifier.Verify(await world.IssueAsync(agent)).Authority);
        Assert.Equal(second.Identifier, world.Verifier.Verify(await world.IssueAsync(agent, issuer: second)).Authority);
    }

    [Fact]
    public async Task ChainPresentedBySomeoneOtherThanItsSubjectIsRefusedAsSubjectMismatch()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var thief = await world.NewAgentAsync();
        var holder = await world.NewAgentAsync();
        var chain = await world.IssueAsync(agent);
        var root = await world.IssueAsync(holder);
        var delegated = await DelegateAsync(holder, root, agent);

        world.VerifyFails(chain, CredentialErrorKind.SubjectMismatch, thief.Identifier);
        world.VerifyFails(delegated, CredentialErrorKind.SubjectMismatch, holder.Identifier);
        Assert.Equal(agent.Identifier, world.Verifier.Verify(delegated, agent.Identifier).Subject);
    }

    [Fact]
    public async Task DelegatingAChainOneDoesNotHoldIsRefusedAsSubjectMismatch()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var impostor = await world.NewAgentAsync();
        var root = await world.IssueAsync(holder);

        var error = await Assert.ThrowsAsync<CredentialException>(() => DelegateAsync(impostor, root, impostor));

        Assert.Equal(CredentialErrorKind.SubjectMismatch, error.Kind);
    }

    [Fact]
    public async Task RootCredentialsSurviveTheAuthoritysRotation()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var before = await world.IssueAsync(agent);
        var rotated = await world.Authority.RotateAsync(IdentityTestKit.NewSigner(), world.Time);
        var after = await world.IssueAsync(agent, issuer: rotated);

        Assert.Equal(rotated.Identifier, world.Authority.Identifier);

        // Until the verifier learns the new history, the new key is unknown.
        world.VerifyFails(after, CredentialErrorKind.BadSignature);
        Assert.Equal(agent.Identifier, world.Verifier.Verify(before).Subject);

        world.Anchors.Update(rotated.History);

        Assert.Equal(agent.Identifier, world.Verifier.Verify(after).Subject);
        Assert.Equal(agent.Identifier, world.Verifier.Verify(before).Subject);
    }

    [Fact]
    public async Task DelegationsSurviveTheDelegatorsRotationWithEitherHistory()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var root = await world.IssueAsync(holder);
        var delegated = await DelegateAsync(holder, root, subject);

        var rotatedHolder = await holder.RotateAsync(IdentityTestKit.NewSigner(), world.Time);
        var withNewHistory = new CredentialChain(delegated.Credentials, [rotatedHolder.History]);
        var delegatedAfterRotation = await DelegateAsync(rotatedHolder, root, subject);

        Assert.Equal(subject.Identifier, world.Verifier.Verify(delegated).Subject);
        Assert.Equal(subject.Identifier, world.Verifier.Verify(withNewHistory).Subject);
        Assert.Equal(subject.Identifier, world.Verifier.Verify(delegatedAfterRotation).Subject);

        // A link signed with the new key cannot be checked against the history from before the rotation.
        world.VerifyFails(new CredentialChain(delegatedAfterRotation.Credentials, [holder.History]), CredentialErrorKind.BadSignature);
    }

    [Fact]
    public async Task ChainRoundTripsThroughItsCanonicalEncodingAndStillVerifies()
    {
        var world = await CreateAsync();
        var a = await world.NewAgentAsync();
        var b = await world.NewAgentAsync();
        var c = await world.NewAgentAsync();
        var chain = await DelegateAsync(b, await DelegateAsync(a, await world.IssueAsync(a), b), c, ["role=billing"]);

        var decoded = CredentialChain.Decode(chain.Encoded);

        Assert.Equal(chain.Encoded, decoded.Encoded);
        Assert.Equal(chain.Credentials.ToArray(), decoded.Credentials.ToArray());
        Assert.Equal(chain.IssuerHistories.Select(h => h.Encoded), decoded.IssuerHistories.Select(h => h.Encoded));
        Assert.Equal(world.Verifier.Verify(chain).Hops.ToArray(), world.Verifier.Verify(decoded).Hops.ToArray());
    }

    [Fact]
    public async Task SignedCredentialRoundTripsThroughItsCanonicalEncoding()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var signed = (await world.IssueAsync(agent)).Leaf;

        var decoded = SignedCredential.Decode(signed.Encoded);

        Assert.Equal(signed, decoded);
        Assert.Equal(signed.SignedHash, decoded.SignedHash);
        Assert.Equal(signed.Credential, decoded.Credential);
        Assert.Equal(signed.Credential.Encoded, Credential.Decode(signed.Credential.Encoded).Encoded);
    }

    [Fact]
    public async Task VerificationDoesNotDependOnWhetherALinkWasDecodedOrBuiltInMemory()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var root = await world.IssueAsync(holder, principal: default(Principal));
        var delegated = await DelegateAsync(holder, root, subject);

        // The same bytes, one link taken from memory and one decoded from the wire.
        var mixed = new CredentialChain([root.Leaf, SignedCredential.Decode(delegated.Leaf.Encoded)], delegated.IssuerHistories);

        Assert.Equal(delegated.Encoded, mixed.Encoded);
        Assert.Equal(subject.Identifier, world.Verifier.Verify(delegated).Subject);
        Assert.Equal(subject.Identifier, world.Verifier.Verify(CredentialChain.Decode(delegated.Encoded)).Subject);
        Assert.Equal(subject.Identifier, world.Verifier.Verify(mixed).Subject);
    }

    [Fact]
    public void VerifierOptionsRefuseANegativeOrHugeClockSkew()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new CredentialVerifierOptions { ClockSkew = TimeSpan.FromSeconds(-1) });
        Assert.Throws<ArgumentOutOfRangeException>(() => new CredentialVerifierOptions { ClockSkew = TimeSpan.FromHours(1) + TimeSpan.FromSeconds(1) });
        Assert.Equal(TimeSpan.FromSeconds(60), new CredentialVerifierOptions().ClockSkew);
        Assert.Equal(TimeSpan.FromHours(1), new CredentialVerifierOptions { ClockSkew = TimeSpan.FromHours(1) }.ClockSkew);
    }

    [Fact]
    public void ChainMustHaveOneToEightCredentialsAndOneHistoryPerDelegatedLink()
    {
        Assert.Throws<ArgumentException>(() => new CredentialChain([], []));
    }
}
