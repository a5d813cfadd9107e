using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Tests.Identity;
using static SecureChannels.Protocol.Tests.Credentials.CredentialWorld;

namespace SecureChannels.Protocol.Tests.Credentials;

/// <summary>Revocation by credential, subject and principal; how a registry merges lists; and re-checking open grants.</summary>
public sealed class RevocationTests
{
    private static void AssertRevoked(CredentialWorld world, CredentialChain chain, string? expectedLink = null)
    {
        var error = world.VerifyFails(chain, CredentialErrorKind.Revoked);
        if (expectedLink is not null)
        {
            Assert.Contains(expectedLink, error.Message, StringComparison.Ordinal);
        }
    }

    private static void AssertValid(CredentialWorld world, CredentialChain chain) =>
        Assert.Equal(chain.Leaf.Credential.Subject, world.Verifier.Verify(chain).Subject);

    [Fact]
    public async Task RevokingOneCredentialByIdRevokesItAlone()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var revoked = await world.IssueAsync(agent);
        var kept = await world.IssueAsync(agent);

        var list = await world.RevocationListAsync(1, [RevocationEntry.ForCredential(revoked.Leaf.Credential.Id)]);
        Assert.Equal(RevocationMergeResult.Accepted, world.Revocations.Merge(list, world.Authority.Verified));

        AssertRevoked(world, revoked, "Link 0");
        AssertValid(world, kept);
    }

    [Fact]
    public async Task RevokingAMiddleLinkRevokesEveryChainBelowIt()
    {
        var world = await CreateAsync();
        var a = await world.NewAgentAsync();
        var b = await world.NewAgentAsync();
        var c = await world.NewAgentAsync();
        var root = await world.IssueAsync(a);
        var middle = await DelegateAsync(a, root, b);
        var leaf = await DelegateAsync(b, middle, c);
        var sibling = await DelegateAsync(a, root, c);

        world.Revocations.Merge(await world.RevocationListAsync(1, [RevocationEntry.ForCredential(middle.Leaf.Credential.Id)]), world.Authority.Verified);

        AssertRevoked(world, middle, "Link 1");
        AssertRevoked(world, leaf, "Link 1");
        AssertValid(world, root);
        AssertValid(world, sibling);
    }

    [Fact]
    public async Task RevokingTheRootCredentialRevokesEverythingDelegatedFromIt()
    {
        var world = await CreateAsync();
        var a = await world.NewAgentAsync();
        var b = await world.NewAgentAsync();
        var root = await world.IssueAsync(a);
        var delegated = await DelegateAsync(a, root, b);

        world.Revocations.Merge(await world.RevocationListAsync(1, [RevocationEntry.ForCredential(root.Leaf.Credential.Id)]), world.Authority.Verified);

        AssertRevoked(world, root, "Link 0");
        AssertRevoked(world, delegated, "Link 0");
    }

    [Fact]
    public async Task RevokingASubjectRevokesAllItsCredentialsAndWhatItDelegated()
    {
        var world = await CreateAsync();
        var revokedAgent = await world.NewAgentAsync();
        var delegator = await world.NewAgentAsync();
        var other = await world.NewAgentAsync();
        var first = await world.IssueAsync(revokedAgent, ["role=billing"]);
        var second = await world.IssueAsync(revokedAgent, ["env=prod"], Principal.Parse("user:bob"));
        var toRevokedAgent = await DelegateAsync(delegator, await world.IssueAsync(delegator), revokedAgent);
        var fromRevokedAgent = await DelegateAsync(revokedAgent, first, other);
        var unrelated = await world.IssueAsync(other);

        world.Revocations.Merge(await world.RevocationListAsync(1, [RevocationEntry.ForSubject(revokedAgent.Identifier)]), world.Authority.Verified);

        AssertRevoked(world, first);
        AssertRevoked(world, second);
        AssertRevoked(world, toRevokedAgent, "Link 1");
        AssertRevoked(world, fromRevokedAgent, "Link 0");
        AssertValid(world, unrelated);
    }

    [Fact]
    public async Task RevokingAPrincipalRevokesEverythingOnItsBehalfAndNothingElse()
    {
        var world = await CreateAsync();
        var agent1 = await world.NewAgentAsync();
        var agent2 = await world.NewAgentAsync();
        var alice1 = await world.IssueAsync(agent1, principal: Principal.Parse("user:alice"));
        var alice2 = await world.IssueAsync(agent2, principal: Principal.Parse("user:alice"));
        var aliceDelegated = await DelegateAsync(agent1, alice1, agent2);
        var bob = await world.IssueAsync(agent1, principal: Principal.Parse("user:bob"));
        var teamAlice = await world.IssueAsync(agent1, principal: Principal.Parse("team:alice"));
        var self = await world.IssueAsync(agent2, principal: Principal.Self);

        world.Revocations.Merge(await world.RevocationListAsync(1, [RevocationEntry.ForPrincipal(Principal.Parse("user:alice"))]), world.Authority.Verified);

        AssertRevoked(world, alice1);
        AssertRevoked(world, alice2);
        AssertRevoked(world, aliceDelegated);
        AssertValid(world, bob);
        AssertValid(world, teamAlice);
        AssertValid(world, self);
    }

    [Fact]
    public async Task EachEntryKindMatchesOnlyItsOwnKindOfValue()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var credential = (await world.IssueAsync(agent)).Leaf.Credential;
        var list = new RevocationList(world.Authority.Identifier, 1, world.Now, [RevocationEntry.ForSubject(agent.Identifier)]);

        Assert.Equal(RevocationEntry.ForSubject(agent.Identifier), list.FindRevocation(credential));
        Assert.True(list.Contains(RevocationEntry.ForSubject(agent.Identifier)));

        // Same bytes, other kind: a credential id equal to the first 16 bytes of the identifier does not match.
        var lookalike = new RevocationList(world.Authority.Identifier, 1, world.Now, [new RevocationEntry(RevocationKind.Credential, agent.Identifier.Bytes.ToArray())]);
        Assert.Null(lookalike.FindRevocation(credential));
        Assert.Null(new RevocationList(world.Authority.Identifier, 1, world.Now, []).FindRevocation(credential));
    }

    [Fact]
    public async Task NewerListReplacesTheHeldOneWhole()
    {
        var world = await CreateAsync();
        var agent1 = await world.NewAgentAsync();
        var agent2 = await world.NewAgentAsync();
        var chain1 = await world.IssueAsync(agent1);
        var chain2 = await world.IssueAsync(agent2);
        var first = await world.RevocationListAsync(1, [RevocationEntry.ForSubject(agent1.Identifier)]);
        var second = await world.RevocationListAsync(5, [RevocationEntry.ForSubject(agent2.Identifier)]);

        Assert.Equal(RevocationMergeResult.Accepted, world.Revocations.Merge(first, world.Authority.Verified));
        AssertRevoked(world, chain1);
        AssertValid(world, chain2);

        Assert.Equal(RevocationMergeResult.Accepted, world.Revocations.Merge(second, world.Authority.Verified));
        AssertValid(world, chain1);
        AssertRevoked(world, chain2);
        Assert.Equal(second, world.Revocations.Find(world.Authority.Identifier));
    }

    [Fact]
    public async Task OlderListIsStaleAndDoesNotReplaceTheNewerOne()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var chain = await world.IssueAsync(agent);
        var older = await world.RevocationListAsync(1, []);
        var newer = await world.RevocationListAsync(2, [RevocationEntry.ForSubject(agent.Identifier)]);
        world.Revocations.Merge(newer, world.Authority.Verified);

        Assert.Equal(RevocationMergeResult.Stale, world.Revocations.Merge(older, world.Authority.Verified));

        Assert.Equal(newer, world.Revocations.Find(world.Authority.Identifier));
        AssertRevoked(world, chain);
    }

    [Fact]
    public async Task SameListAgainIsAlreadyKnown()
    {
        var world = await CreateAsync();
        var list = await world.RevocationListAsync(3, [RevocationEntry.ForCredential(Credential.NewId())]);

        Assert.Equal(RevocationMergeResult.Accepted, world.Revocations.Merge(list, world.Authority.Verified));
        Assert.Equal(RevocationMergeResult.AlreadyKnown, world.Revocations.Merge(list, world.Authority.Verified));
        Assert.Equal(RevocationMergeResult.AlreadyKnown, world.Revocations.Merge(SignedRevocationList.Decode(list.Encode()), world.Authority.Verified));
    }

    [Fact]
    public async Task SameSequenceWithDifferentContentIsEquivocationAndIsIgnored()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var chain = await world.IssueAsync(agent);
        var held = await world.RevocationListAsync(4, []);
        var conflicting = await world.RevocationListAsync(4, [RevocationEntry.ForSubject(agent.Identifier)]);
        world.Revocations.Merge(held, world.Authority.Verified);

        Assert.Equal(RevocationMergeResult.Equivocation, world.Revocations.Merge(conflicting, world.Authority.Verified));

        Assert.Equal(held, world.Revocations.Find(world.Authority.Identifier));
        AssertValid(world, chain);
    }

    [Fact]
    public async Task ListIssuedAtAnotherTimeWithTheSameSequenceIsEquivocation()
    {
        var world = await CreateAsync();
        var held = await world.RevocationListAsync(7, []);
        world.Revocations.Merge(held, world.Authority.Verified);
        world.Time.Advance(TimeSpan.FromMinutes(1));

        var reissued = await world.RevocationListAsync(7, []);

        Assert.Equal(RevocationMergeResult.Equivocation, world.Revocations.Merge(reissued, world.Authority.Verified));
    }

    [Fact]
    public async Task ListOfAnotherAuthorityDoesNotAffectChainsRootedElsewhere()
    {
        var world = await CreateAsync();
        var otherAuthority = await world.NewAgentAsync();
        world.Anchors.Trust(otherAuthority.Verified);
        var agent = await world.NewAgentAsync();
        var fromMain = await world.IssueAsync(agent);
        var fromOther = await world.IssueAsync(agent, issuer: otherAuthority);

        var list = await world.RevocationListAsync(
            1,
            [RevocationEntry.ForSubject(agent.Identifier), RevocationEntry.ForCredential(fromMain.Leaf.Credential.Id), RevocationEntry.ForPrincipal(Alice)],
            otherAuthority);
        Assert.Equal(RevocationMergeResult.Accepted, world.Revocations.Merge(list, otherAuthority.Verified));

        AssertValid(world, fromMain);
        AssertRevoked(world, fromOther);
        Assert.Null(world.Revocations.Find(world.Authority.Identifier));
    }

    [Fact]
    public async Task ListsOfTwoAuthoritiesAreKeptSideBySide()
    {
        var world = await CreateAsync();
        var other = await world.NewAgentAsync();
        var mine = await world.RevocationListAsync(9, []);
        var theirs = await world.RevocationListAsync(1, [], other);

        Assert.Equal(RevocationMergeResult.Accepted, world.Revocations.Merge(mine, world.Authority.Verified));
        Assert.Equal(RevocationMergeResult.Accepted, world.Revocations.Merge(theirs, other.Verified));

        Assert.Equal(mine, world.Revocations.Find(world.Authority.Identifier));
        Assert.Equal(theirs, world.Revocations.Find(other.Identifier));
    }

    [Fact]
    public async Task ListSignedByAnotherKeyIsRefusedAsBadSignature()
    {
        var world = await CreateAsync();
        var attacker = await world.NewAgentAsync();
        var agent = await world.NewAgentAsync();
        var chain = await world.IssueAsync(agent);
        var list = new RevocationList(world.Authority.Identifier, 100, world.Now, [RevocationEntry.ForSubject(agent.Identifier)]);
        var signature = await SignatureDomain.SignAsync(attacker.Signer, SignatureDomain.RevocationList, list.Encoded);
        var forged = new SignedRevocationList(list, world.Authority.Verified.Current.ChangeHash, signature);

        var error = Assert.Throws<CredentialException>(() => world.Revocations.Merge(forged, world.Authority.Verified));

        Assert.Equal(CredentialErrorKind.BadSignature, error.Kind);
        Assert.Null(world.Revocations.Find(world.Authority.Identifier));
        AssertValid(world, chain);
    }

    [Fact]
    public async Task ListCheckedAgainstAnIdentityOtherThanItsIssuerIsRefusedAsBadSignature()
    {
        var world = await CreateAsync();
        var attacker = await world.NewAgentAsync();
        var ownList = await world.RevocationListAsync(1, []);
        var attackersList = await world.RevocationListAsync(1, [], attacker);

        Assert.Equal(CredentialErrorKind.BadSignature, Assert.Throws<CredentialException>(() => world.Revocations.Merge(ownList, attacker.Verified)).Kind);
        Assert.Equal(CredentialErrorKind.BadSignature, Assert.Throws<CredentialException>(() => world.Revocations.Merge(attackersList, world.Authority.Verified)).Kind);
    }

    [Fact]
    public async Task ListWithATamperedSignatureUnknownChangeOrAlteredContentIsRefusedAsBadSignature()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var genuine = await world.RevocationListAsync(2, [RevocationEntry.ForSubject(agent.Identifier)]);
        var emptied = new RevocationList(genuine.List.Issuer, genuine.List.Sequence, genuine.List.IssuedAt, []);
        var bumped = new RevocationList(genuine.List.Issuer, genuine.List.Sequence + 1, genuine.List.IssuedAt, genuine.List.Entries);

        var tampered = new[]
        {
            genuine with { Signature = IdentityTestKit.FlipBit(genuine.Signature, 17) },
            genuine with { IssuerChangeHash = agent.Verified.Current.ChangeHash },
            genuine with { List = emptied },
            genuine with { List = bumped },
            genuine with { Signature = (await SignatureDomain.SignAsync(world.Authority.Signer, SignatureDomain.Credential, genuine.List.Encoded)) },
        };

        foreach (var list in tampered)
        {
            Assert.Equal(CredentialErrorKind.BadSignature, Assert.Throws<CredentialException>(() => list.Verify(world.Authority.Verified)).Kind);
        }

        genuine.Verify(world.Authority.Verified);
    }

    [Fact]
    public async Task ListSignedAfterTheAuthorityRotatedVerifiesAgainstTheNewHistory()
    {
        var world = await CreateAsync();
        var rotated = await world.Authority.RotateAsync(IdentityTestKit.NewSigner(), world.Time);

        var list = await world.RevocationListAsync(1, [], rotated);

        Assert.Equal(CredentialErrorKind.BadSignature, Assert.Throws<CredentialException>(() => list.Verify(world.Authority.Verified)).Kind);
        Assert.Equal(RevocationMergeResult.Accepted, world.Revocations.Merge(list, rotated.Verified));
    }

    [Fact]
    public async Task SigningAListThatNamesAnotherIssuerIsRefused()
    {
        var world = await CreateAsync();
        var other = await world.NewAgentAsync();
        var list = new RevocationList(other.Identifier, 1, world.Now, []);

        await Assert.ThrowsAsync<ArgumentException>(() => SignedRevocationList.SignAsync(list, world.Authority));
    }

    [Fact]
    public async Task ChangedFiresOnlyWhenANewerListIsAccepted()
    {
        var world = await CreateAsync();
        var events = new List<Identifier>();
        world.Revocations.Changed += events.Add;
        var one = await world.RevocationListAsync(1, []);
        var two = await world.RevocationListAsync(2, []);
        var twoConflicting = await world.RevocationListAsync(2, [RevocationEntry.ForCredential(Credential.NewId())]);

        Assert.Equal(RevocationMergeResult.Accepted, world.Revocations.Merge(one, world.Authority.Verified));
        Assert.Single(events);
        Assert.Equal(RevocationMergeResult.AlreadyKnown, world.Revocations.Merge(one, world.Authority.Verified));
        Assert.Equal(RevocationMergeResult.Accepted, world.Revocations.Merge(two, world.Authority.Verified));
        Assert.Equal(RevocationMergeResult.Stale, world.Revocations.Merge(one, world.Authority.Verified));
        Assert.Equal(RevocationMergeResult.Equivocation, world.Revocations.Merge(twoConflicting, world.Authority.Verified));
        Assert.Throws<CredentialException>(() => world.Revocations.Merge(one with { Signature = new byte[64] }, world.Authority.Verified));

        Assert.Equal([world.Authority.Identifier, world.Authority.Identifier], events);
    }

    [Fact]
    public async Task StillValidTurnsFalseOnceARevocationArrives()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var chain = await DelegateAsync(holder, await world.IssueAsync(holder), subject);
        var rechecked = new List<bool>();
        world.Revocations.Changed += authority => rechecked.Add(world.Verifier.IsStillValid(chain, out _));

        Assert.True(world.Verifier.IsStillValid(chain, out _));
        world.Revocations.Merge(await world.RevocationListAsync(1, [RevocationEntry.ForSubject(holder.Identifier)]), world.Authority.Verified);

        Assert.False(world.Verifier.IsStillValid(chain, out var reason));
        Assert.Equal(CredentialErrorKind.Revoked, reason!.Kind);
        Assert.Equal([false], rechecked);

        // A newer list without the entry restores it.
        world.Revocations.Merge(await world.RevocationListAsync(2, []), world.Authority.Verified);
        Assert.True(world.Verifier.IsStillValid(chain, out _));
    }

    [Fact]
    public async Task ListSortsAndDeduplicatesItsEntries()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var id = Credential.NewId();
        var entries = new[]
        {
            RevocationEntry.ForPrincipal(Principal.Parse("user:zed")),
            RevocationEntry.ForSubject(agent.Identifier),
            RevocationEntry.ForCredential(id),
            RevocationEntry.ForPrincipal(Principal.Parse("user:amy")),
            RevocationEntry.ForCredential(id),
        };

        var list = new RevocationList(world.Authority.Identifier, 1, world.Now, entries);

        Assert.Equal(
            [RevocationEntry.ForCredential(id), RevocationEntry.ForSubject(agent.Identifier), RevocationEntry.ForPrincipal(Principal.Parse("user:amy")), RevocationEntry.ForPrincipal(Principal.Parse("user:zed"))],
            list.Entries.ToArray());
        Assert.Equal(list, new RevocationList(world.Authority.Identifier, 1, world.Now, entries.Reverse()));
    }

    [Fact]
    public async Task SignedListRoundTripsThroughItsCanonicalEncoding()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var signed = await world.RevocationListAsync(
            42,
            [RevocationEntry.ForCredential(Credential.NewId()), RevocationEntry.ForSubject(agent.Identifier), RevocationEntry.ForPrincipal(Principal.Parse("team:ops"))]);

        var decoded = SignedRevocationList.Decode(signed.Encode());

        Assert.Equal(signed, decoded);
        Assert.Equal(signed.Encode(), decoded.Encode());
        Assert.Equal(signed.List.Entries.ToArray(), decoded.List.Entries.ToArray());
        Assert.Equal(42UL, decoded.List.Sequence);
        Assert.Equal(signed.List.Encoded, RevocationList.Decode(signed.List.Encoded).Encoded);
        decoded.Verify(world.Authority.Verified);
    }

    [Fact]
    public void ListAndSubjectEntryRefuseAnUnsetIdentifier()
    {
        // Like Credential and KeyAttestation: a value that could never be decoded again is refused when it is made.
        Assert.Throws<ArgumentException>(() => new RevocationList(default, 1, IdentityTestKit.Start, []));
        Assert.Throws<ArgumentException>(() => RevocationEntry.ForSubject(default));
    }

    [Fact]
    public void EntriesDescribeThemselvesWithoutSecrets()
    {
        var id = Enumerable.Range(0, 16).Select(i => (byte)i).ToArray();
        var subject = Identifier.FromBytes(new byte[32]);

        Assert.Equal("credential 000102030405060708090a0b0c0d0e0f", RevocationEntry.ForCredential(id).ToString());
        Assert.Equal($"subject {subject}", RevocationEntry.ForSubject(subject).ToString());
        Assert.Equal("principal user:alice", RevocationEntry.ForPrincipal(Principal.Parse("user:alice")).ToString());
        Assert.Throws<ArgumentException>(() => RevocationEntry.ForCredential(new byte[15]));
    }
}
