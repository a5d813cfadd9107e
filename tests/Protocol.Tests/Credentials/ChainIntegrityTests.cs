using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Tests.Identity;
using SecureChannels.Protocol.Tests.Wire;
using SecureChannels.Protocol.Wire;
using static SecureChannels.Protocol.Tests.Credentials.CredentialWorld;

namespace SecureChannels.Protocol.Tests.Credentials;

/// <summary>Broken links, missing histories, forged or altered signatures, the clock, and the chain length limit.</summary>
public sealed class ChainIntegrityTests
{
    [Fact]
    public async Task RootThatClaimsAParentIsRefusedAsBrokenChain()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var genuine = (await world.IssueAsync(agent)).Leaf;
        var c = genuine.Credential;
        var withParent = new Credential(c.Id, c.Issuer, c.Subject, c.Principal, c.Attributes, c.NotBefore, c.NotAfter, c.MaxDelegationDepth, new ParentReference(Credential.NewId(), new byte[32]));

        var chain = new CredentialChain([await SignAsync(world.Authority, withParent)], []);

        world.VerifyFails(chain, CredentialErrorKind.BrokenChain);
    }

    [Fact]
    public async Task ChildNamingAnotherCredentialAsItsParentIsRefusedAsBrokenChain()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var held = await world.IssueAsync(holder);
        var otherOfHolder = await world.IssueAsync(holder);
        var p = held.Leaf;

        var wrongId = Child(p, holder.Identifier, subject.Identifier, parentReference: new ParentReference(otherOfHolder.Leaf.Credential.Id, p.SignedHash));
        var wrongHash = Child(p, holder.Identifier, subject.Identifier, parentReference: new ParentReference(p.Credential.Id, otherOfHolder.Leaf.SignedHash));
        var noParent = new Credential(Credential.NewId(), holder.Identifier, subject.Identifier, p.Credential.Principal, p.Credential.Attributes, p.Credential.NotBefore, p.Credential.NotAfter, 0, null);

        foreach (var child in new[] { wrongId, wrongHash, noParent })
        {
            var error = world.VerifyFails(await AppendAsync(held, holder, child), CredentialErrorKind.BrokenChain);
            Assert.Contains("Link 1", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ChildOfAnotherChainSplicedOntoThisOneIsRefusedAsBrokenChain()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var first = await world.IssueAsync(holder);
        var second = await world.IssueAsync(holder);
        var delegatedFromSecond = await DelegateAsync(holder, second, subject);

        var spliced = new CredentialChain([first.Leaf, delegatedFromSecond.Leaf], delegatedFromSecond.IssuerHistories);

        world.VerifyFails(spliced, CredentialErrorKind.BrokenChain);
    }

    [Fact]
    public async Task ChildIssuedBySomeoneOtherThanTheParentsSubjectIsRefusedAsBrokenChain()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var outsider = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var held = await world.IssueAsync(holder);

        // The outsider names the right parent and signs with its own, valid, key and history.
        var chain = await AppendAsync(held, outsider, Child(held.Leaf, outsider.Identifier, subject.Identifier));

        var error = world.VerifyFails(chain, CredentialErrorKind.BrokenChain);
        Assert.Contains(outsider.Identifier.ToString(), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChildClaimingTheHoldersIdentityButSignedByAnotherKeyIsRefusedAsBadSignature()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var outsider = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var held = await world.IssueAsync(holder);
        var child = Child(held.Leaf, holder.Identifier, subject.Identifier);
        var forged = await SignAsync(outsider, child);

        var withOutsiderChange = new CredentialChain([.. held.Credentials, forged], [holder.History]);
        var withHolderChange = new CredentialChain([.. held.Credentials, new SignedCredential(child, holder.Verified.Current.ChangeHash, forged.Signature)], [holder.History]);

        world.VerifyFails(withOutsiderChange, CredentialErrorKind.BadSignature);
        world.VerifyFails(withHolderChange, CredentialErrorKind.BadSignature);
    }

    [Fact]
    public async Task ChainWhoseIssuerHistoryIsAnotherIdentitysIsRefusedAsMissingIssuerHistory()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var delegated = await DelegateAsync(holder, await world.IssueAsync(holder), subject);

        var wrongHistory = new CredentialChain(delegated.Credentials, [subject.History]);

        var error = world.VerifyFails(wrongHistory, CredentialErrorKind.MissingIssuerHistory);
        Assert.Contains(holder.Identifier.ToString(), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChainWhoseIssuerHistoryDoesNotVerifyIsRefusedAsMissingIssuerHistory()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var delegated = await DelegateAsync(holder, await world.IssueAsync(holder), subject);
        var genuine = holder.History.Changes[0];
        var tampered = new IdentityHistory([genuine with { Signature = IdentityTestKit.FlipBit(genuine.Signature, 0) }]);

        var error = world.VerifyFails(new CredentialChain(delegated.Credentials, [tampered]), CredentialErrorKind.MissingIssuerHistory);

        Assert.Equal(IdentityErrorKind.BadSignature, Assert.IsType<IdentityException>(error.InnerException).Kind);
    }

    [Fact]
    public async Task IssuerHistoriesInTheWrongOrderAreRefusedAsMissingIssuerHistory()
    {
        var world = await CreateAsync();
        var a = await world.NewAgentAsync();
        var b = await world.NewAgentAsync();
        var c = await world.NewAgentAsync();
        var chain = await DelegateAsync(b, await DelegateAsync(a, await world.IssueAsync(a), b), c);

        var swapped = new CredentialChain(chain.Credentials, [chain.IssuerHistories[1], chain.IssuerHistories[0]]);

        world.VerifyFails(swapped, CredentialErrorKind.MissingIssuerHistory);
    }

    [Fact]
    public async Task FlippedBitInTheRootSignatureIsRefusedAsBadSignature()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var chain = await world.IssueAsync(agent);
        var root = chain.Leaf;

        for (var index = 0; index < SignatureDomain.SignatureLength; index += 7)
        {
            var flipped = new SignedCredential(root.Credential, root.IssuerChangeHash, IdentityTestKit.FlipBit(root.Signature, index, index % 8));
            world.VerifyFails(new CredentialChain([flipped], []), CredentialErrorKind.BadSignature);
        }
    }

    [Fact]
    public async Task FlippedBitInADelegatedLinksSignatureIsRefusedAsBadSignature()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var chain = await DelegateAsync(holder, await world.IssueAsync(holder), subject);
        var leaf = chain.Leaf;

        var flipped = new SignedCredential(leaf.Credential, leaf.IssuerChangeHash, IdentityTestKit.FlipBit(leaf.Signature, 40, 3));

        var error = world.VerifyFails(Replace(chain, 1, flipped), CredentialErrorKind.BadSignature);
        Assert.Contains("Link 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RootResignedByAnImpostorClaimingTheAuthorityIsRefusedAsBadSignature()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var impostor = await world.NewAgentAsync();
        var root = (await world.IssueAsync(agent)).Leaf;

        var resigned = await SignAsync(impostor, root.Credential);
        var resignedNamingAuthorityChange = new SignedCredential(root.Credential, root.IssuerChangeHash, resigned.Signature);

        world.VerifyFails(new CredentialChain([resigned], []), CredentialErrorKind.BadSignature);
        world.VerifyFails(new CredentialChain([resignedNamingAuthorityChange], []), CredentialErrorKind.BadSignature);
    }

    [Fact]
    public async Task AlteredCredentialKeepingTheOriginalSignatureIsRefusedAsBadSignature()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var other = await world.NewAgentAsync();
        var root = (await world.IssueAsync(agent, ["role=support"])).Leaf;
        var c = root.Credential;

        var alterations = new[]
        {
            new Credential(c.Id, c.Issuer, c.Subject, c.Principal, Attributes("role=admin"), c.NotBefore, c.NotAfter, c.MaxDelegationDepth, null),
            new Credential(c.Id, c.Issuer, c.Subject, c.Principal, c.Attributes, c.NotBefore, c.NotAfter.AddDays(365), c.MaxDelegationDepth, null),
            new Credential(c.Id, c.Issuer, other.Identifier, c.Principal, c.Attributes, c.NotBefore, c.NotAfter, c.MaxDelegationDepth, null),
            new Credential(c.Id, c.Issuer, c.Subject, Principal.Parse("user:root"), c.Attributes, c.NotBefore, c.NotAfter, c.MaxDelegationDepth, null),
            new Credential(c.Id, c.Issuer, c.Subject, c.Principal, c.Attributes, c.NotBefore, c.NotAfter, c.MaxDelegationDepth + 1, null),
            new Credential(Credential.NewId(), c.Issuer, c.Subject, c.Principal, c.Attributes, c.NotBefore, c.NotAfter, c.MaxDelegationDepth, null),
        };

        foreach (var altered in alterations)
        {
            world.VerifyFails(new CredentialChain([new SignedCredential(altered, root.IssuerChangeHash, root.Signature)], []), CredentialErrorKind.BadSignature);
        }
    }

    [Fact]
    public async Task SignatureUnderAnotherDomainIsRefusedAsBadSignature()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var root = (await world.IssueAsync(agent)).Leaf;

        var wrongDomain = await SignAsync(world.Authority, root.Credential, SignatureDomain.RevocationList);

        world.VerifyFails(new CredentialChain([wrongDomain], []), CredentialErrorKind.BadSignature);
    }

    [Fact]
    public async Task SignatureNamingAChangeTheIssuerNeverHadIsRefusedAsBadSignature()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var root = (await world.IssueAsync(agent)).Leaf;

        var unknownChange = new SignedCredential(root.Credential, agent.Verified.Current.ChangeHash, root.Signature);

        world.VerifyFails(new CredentialChain([unknownChange], []), CredentialErrorKind.BadSignature);
    }

    [Fact]
    public async Task CredentialPastItsExpiryPlusSkewIsRefusedAsExpired()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var chain = await world.IssueAsync(agent, lifetime: TimeSpan.FromHours(1));

        world.Time.Advance(TimeSpan.FromHours(1) + TimeSpan.FromSeconds(59));
        Assert.Equal(agent.Identifier, world.Verifier.Verify(chain).Subject);

        world.Time.Advance(TimeSpan.FromSeconds(1));
        var error = world.VerifyFails(chain, CredentialErrorKind.Expired);
        Assert.Contains("Link 0", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CredentialBeforeItsStartMinusSkewIsRefusedAsNotYetValid()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var chain = await world.IssueAsync(agent, notBefore: world.Now.AddMinutes(10));

        world.VerifyFails(chain, CredentialErrorKind.NotYetValid);

        // With the default skew of 60 s, the credential is accepted from one minute before its start.
        world.Time.Advance(TimeSpan.FromMinutes(8) + TimeSpan.FromSeconds(59));
        world.VerifyFails(chain, CredentialErrorKind.NotYetValid);

        world.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(agent.Identifier, world.Verifier.Verify(chain).Subject);
    }

    [Fact]
    public async Task ConfiguredClockSkewIsHonouredAtBothEnds()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var start = world.Now.AddMinutes(30);
        var chain = await world.IssueAsync(agent, notBefore: start, lifetime: TimeSpan.FromHours(1));
        var strict = new CredentialVerifier(world.Anchors, world.Revocations, world.Time, new CredentialVerifierOptions { ClockSkew = TimeSpan.Zero });
        var lenient = new CredentialVerifier(world.Anchors, world.Revocations, world.Time, new CredentialVerifierOptions { ClockSkew = TimeSpan.FromMinutes(30) });

        Assert.Equal(CredentialErrorKind.NotYetValid, Assert.Throws<CredentialException>(() => strict.Verify(chain)).Kind);
        Assert.Equal(agent.Identifier, lenient.Verify(chain).Subject);

        world.Time.Advance(TimeSpan.FromMinutes(30));
        Assert.Equal(agent.Identifier, strict.Verify(chain).Subject);

        world.Time.Advance(TimeSpan.FromHours(1) - TimeSpan.FromSeconds(1));
        Assert.Equal(agent.Identifier, strict.Verify(chain).Subject);

        world.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(CredentialErrorKind.Expired, Assert.Throws<CredentialException>(() => strict.Verify(chain)).Kind);
        Assert.Equal(agent.Identifier, lenient.Verify(chain).Subject);

        world.Time.Advance(TimeSpan.FromMinutes(30));
        Assert.Equal(CredentialErrorKind.Expired, Assert.Throws<CredentialException>(() => lenient.Verify(chain)).Kind);
    }

    [Fact]
    public async Task DelegatedChainExpiresWithItsShortestLivedLink()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var root = await world.IssueAsync(holder, lifetime: TimeSpan.FromHours(8));
        var delegated = await DelegateAsync(holder, root, subject, notAfter: world.Now.AddHours(1));

        world.Time.Advance(TimeSpan.FromHours(2));

        var error = world.VerifyFails(delegated, CredentialErrorKind.Expired);
        Assert.Contains("Link 1", error.Message, StringComparison.Ordinal);
        Assert.Equal(holder.Identifier, world.Verifier.Verify(root).Subject);
    }

    [Fact]
    public async Task StillValidTurnsFalseOnceTheClockPassesTheExpiry()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var chain = await world.IssueAsync(agent, lifetime: TimeSpan.FromHours(1));

        Assert.True(world.Verifier.IsStillValid(chain, out var none));
        Assert.Null(none);

        world.Time.Advance(TimeSpan.FromHours(2));

        Assert.False(world.Verifier.IsStillValid(chain, out var reason));
        Assert.Equal(CredentialErrorKind.Expired, reason!.Kind);
    }

    [Fact]
    public async Task ChainLongerThanTheMaximumCannotBeBuiltOrDecoded()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var chain = await world.IssueAsync(agent);
        var link = chain.Leaf;
        var tooMany = CredentialLimits.MaxChainLength + 1;

        Assert.Throws<ArgumentException>(() => new CredentialChain(Enumerable.Repeat(link, tooMany), Enumerable.Repeat(agent.History, tooMany - 1)));
        Assert.Throws<ArgumentException>(() => new CredentialChain([link, link], []));

        var encoded = Msg.Build((ref MessagePack.MessagePackWriter w) =>
        {
            w.WriteArrayHeader(3);
            w.Write(1);
            w.WriteArrayHeader(tooMany);
            for (var i = 0; i < tooMany; i++)
            {
                w.Write(link.Encoded);
            }

            w.WriteArrayHeader(tooMany - 1);
            for (var i = 0; i < tooMany - 1; i++)
            {
                w.Write(agent.History.Encoded);
            }
        });
        var error = Assert.Throws<CredentialException>(() => CredentialChain.Decode(encoded));

        Assert.Equal(CredentialErrorKind.ChainTooLong, error.Kind);
        Assert.Equal(WireErrorKind.TooLarge, IdentityTestKit.WireKind(error));
    }

    [Fact]
    public async Task ErrorsForOneLinkNameThatLinkAndItsCredentialId()
    {
        var world = await CreateAsync();
        var a = await world.NewAgentAsync();
        var b = await world.NewAgentAsync();
        var c = await world.NewAgentAsync();
        var chain = await DelegateAsync(b, await DelegateAsync(a, await world.IssueAsync(a), b), c);
        var leaf = chain.Leaf;

        var error = world.VerifyFails(Replace(chain, 2, new SignedCredential(leaf.Credential, leaf.IssuerChangeHash, IdentityTestKit.FlipBit(leaf.Signature, 1))), CredentialErrorKind.BadSignature);

        Assert.Contains("Link 2", error.Message, StringComparison.Ordinal);
        Assert.Contains(leaf.Credential.IdText, error.Message, StringComparison.Ordinal);
    }
}
