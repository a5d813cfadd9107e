using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using static SecureChannels.Protocol.Tests.Credentials.CredentialWorld;
using static SecureChannels.Protocol.Tests.Identity.IdentityTestKit;

namespace SecureChannels.Protocol.Tests.Credentials;

/// <summary>
/// Credential chains verified through the verifier's <see cref="VerificationCache"/>: a chain presented again (a fresh
/// decoding of the same bytes) costs no signature verification, while the trust anchor, validity, revocation and
/// presenter are judged every time, and anything else misses.
/// </summary>
public sealed class CachedChainVerificationTests
{
    [Fact]
    public async Task AChainPresentedAgainIsNotVerifiedAgain()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var chain = await DelegateAsync(holder, await world.IssueAsync(holder), subject);
        var cache = world.Verifier.Cache;

        // Two link signatures and the delegating holder's one-change history; the chain and the history each miss.
        VerifiedCredential? first = null;
        Assert.Equal(3, CountVerifications(() => first = world.Verifier.Verify(Decode(chain), subject.Identifier)));
        Assert.Equal((0, 2, 2), (cache.Hits, cache.Misses, cache.Count));

        VerifiedCredential? again = null;
        Assert.Equal(0, CountVerifications(() => again = world.Verifier.Verify(Decode(chain), subject.Identifier)));
        Assert.Equal((1, 2, 2), (cache.Hits, cache.Misses, cache.Count));

        Assert.Equal(first!.Subject, again!.Subject);
        Assert.Equal(first.Principal, again.Principal);
        Assert.Equal(first.Hops.ToArray(), again.Hops.ToArray());
        Assert.Equal(first.Attributes, again.Attributes);
        Assert.Equal((first.NotBefore, first.NotAfter), (again.NotBefore, again.NotAfter));
    }

    [Fact]
    public async Task ADelegatingIssuersHistoryIsCachedAcrossItsChains()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var held = await world.IssueAsync(holder);
        var first = await DelegateAsync(holder, held, await world.NewAgentAsync());
        var second = await DelegateAsync(holder, held, await world.NewAgentAsync());
        world.Verifier.Verify(Decode(first));

        // A new chain: its two links are verified, the holder's history is not.
        Assert.Equal(2, CountVerifications(() => world.Verifier.Verify(Decode(second))));
        Assert.Equal(1, world.Verifier.Cache.Hits);
    }

    public static TheoryData<string> StillRefused =>
    [
        "expired",
        "revoked after it was cached",
        "its authority is no longer trusted",
        "presented by another agent",
    ];

    [Theory]
    [MemberData(nameof(StillRefused))]
    public async Task ACachedChainIsStillRefusedWhenWhatCanChangeNoLongerHolds(string change)
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var chain = await DelegateAsync(holder, await world.IssueAsync(holder, lifetime: TimeSpan.FromHours(1)), subject);
        world.Verifier.Verify(Decode(chain), subject.Identifier);

        var presenter = subject.Identifier;
        CredentialErrorKind expected;
        switch (change)
        {
            case "expired":
                world.Time.Advance(TimeSpan.FromHours(2));
                expected = CredentialErrorKind.Expired;
                break;
            case "revoked after it was cached":
                world.Revocations.Merge(await world.RevocationListAsync(1, [RevocationEntry.ForCredential(chain.Credentials[0].Credential.Id)]), world.Authority.Verified);
                expected = CredentialErrorKind.Revoked;
                break;
            case "its authority is no longer trusted":
                Assert.True(world.Anchors.Remove(world.Authority.Identifier));
                expected = CredentialErrorKind.UntrustedIssuer;
                break;
            default:
                presenter = holder.Identifier;
                expected = CredentialErrorKind.SubjectMismatch;
                break;
        }

        // Nothing new is verified, nor missed: the refusal comes from the checks a hit still makes.
        Assert.Equal(0, CountVerifications(() => world.VerifyFails(Decode(chain), expected, presenter)));
        Assert.Equal(2, world.Verifier.Cache.Misses);
    }

    [Fact]
    public async Task ANewHistoryOfTheTrustAnchorMissesOnceAndReChecksTheSignatures()
    {
        var world = await CreateAsync();
        var agent = await world.NewAgentAsync();
        var chain = await world.IssueAsync(agent);
        world.Verifier.Verify(Decode(chain));
        var rotated = await world.Authority.RotateAsync(NewSigner(), world.Time);

        world.Anchors.Update(rotated.History);

        // Signed by the change before the rotation, which the new history still holds.
        Assert.Equal(1, CountVerifications(() => world.Verifier.Verify(Decode(chain))));
        Assert.Equal(0, CountVerifications(() => world.Verifier.Verify(Decode(chain))));
        Assert.Equal((1, 2), (world.Verifier.Cache.Hits, world.Verifier.Cache.Misses));
    }

    [Fact]
    public async Task ATrustAnchorReplacedByAForkDoesNotInheritTheCachedChains()
    {
        var world = await CreateAsync();
        var authority = await NewIdentityAsync(world.Time);
        var anchors = new TrustAnchors().Trust(authority.Verified);
        var verifier = new CredentialVerifier(anchors, world.Revocations, world.Time);
        var agent = await world.NewAgentAsync();

        // Signed by a key the authority later forks away from: a history with the same first change but another second.
        world.Time.Advance(TimeSpan.FromMinutes(1));
        var rotatedOnce = await authority.RotateAsync(NewSigner(), world.Time);
        anchors.Trust(rotatedOnce.Verified);
        var chain = await world.IssueAsync(agent, issuer: rotatedOnce);
        verifier.Verify(Decode(chain));
        var fork = await authority.RotateAsync(NewSigner(), world.Time);

        anchors.Trust(fork.Verified);

        var error = Assert.Throws<CredentialException>(() => verifier.Verify(Decode(chain)));
        Assert.Equal(CredentialErrorKind.BadSignature, error.Kind);
        Assert.Equal(2, verifier.Cache.Misses);
    }

    [Fact]
    public async Task ACacheSharedWithAStricterVerifierCarriesNothingOver()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var chain = await DelegateAsync(holder, await world.IssueAsync(holder), await world.NewAgentAsync());
        var shared = new VerificationCache();
        var lenient = new CredentialVerifier(world.Anchors, world.Revocations, world.Time, new CredentialVerifierOptions { Cache = shared });
        var strict = new CredentialVerifier(world.Anchors, world.Revocations, world.Time, new CredentialVerifierOptions { Cache = shared, RequireRegisteredDelegations = true });
        lenient.Verify(Decode(chain));

        var error = Assert.Throws<CredentialException>(() => strict.Verify(Decode(chain)));

        Assert.Equal(CredentialErrorKind.Unregistered, error.Kind);
        Assert.Same(shared, strict.Cache);
    }

    [Fact]
    public async Task EveryBitFlipOfACachedChainMissesAndIsRefused()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var encoded = (await DelegateAsync(holder, await world.IssueAsync(holder), await world.NewAgentAsync())).Encoded;
        world.Verifier.Verify(CredentialChain.Decode(encoded));
        var cache = world.Verifier.Cache;
        var entries = cache.Count;

        for (var i = 0; i < encoded.Length; i++)
        {
            var tampered = FlipBit(encoded, i, bit: i % 8);
            var hits = cache.Hits;
            Assert.ThrowsAny<CredentialException>(() => world.Verifier.Verify(CredentialChain.Decode(tampered)));
            // A tampered chain never hits; at most its untouched issuer history does.
            Assert.True(cache.Hits - hits <= 1, $"Byte {i}: the tampered chain hit.");
        }

        Assert.Equal(entries, cache.Count);
    }

    [Fact]
    public async Task AnOpenChannelsChainIsReCheckedWithoutTheCacheEvenAfterEviction()
    {
        var world = await CreateAsync();
        var verifier = new CredentialVerifier(world.Anchors, world.Revocations, world.Time, new CredentialVerifierOptions { Cache = new VerificationCache(capacity: 1) });
        var agent = await world.NewAgentAsync();
        var held = await world.IssueAsync(agent);
        verifier.Verify(held);
        verifier.Verify(await world.IssueAsync(await world.NewAgentAsync()));
        Assert.False(verifier.Cache.Contains(VerificationKey.Derive(VerifiedKind.CredentialChain, held.Encoded, world.Authority.History.Encoded, [0])));
        var (hits, misses) = (verifier.Cache.Hits, verifier.Cache.Misses);

        Assert.Equal(0, CountVerifications(() => Assert.True(verifier.IsStillValid(held, out _))));
        Assert.Equal((hits, misses), (verifier.Cache.Hits, verifier.Cache.Misses));

        world.Revocations.Merge(await world.RevocationListAsync(1, [RevocationEntry.ForSubject(agent.Identifier)]), world.Authority.Verified);
        Assert.False(verifier.IsStillValid(held, out var reason));
        Assert.Equal(CredentialErrorKind.Revoked, reason!.Kind);
    }

    [Fact]
    public async Task ParallelVerificationsOfOneChainAndItsForgeryAgree()
    {
        var world = await CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var chain = await DelegateAsync(holder, await world.IssueAsync(holder), subject);
        var leaf = chain.Leaf;
        var forged = new CredentialChain([chain.Credentials[0], new SignedCredential(leaf.Credential, leaf.IssuerChangeHash, FlipBit(leaf.Signature, 7))], chain.IssuerHistories).Encoded;
        var expected = world.Verifier.Verify(chain, subject.Identifier);
        var outcomes = new string[256];

        Parallel.For(0, outcomes.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            try
            {
                var verified = world.Verifier.Verify(CredentialChain.Decode(i % 4 == 3 ? forged : chain.Encoded), subject.Identifier);
                outcomes[i] = string.Join(" ", verified.Hops.Select(h => h.CredentialId)) + " " + verified.Attributes;
            }
            catch (CredentialException e)
            {
                outcomes[i] = e.Kind.ToString();
            }
        });

        var genuine = string.Join(" ", expected.Hops.Select(h => h.CredentialId)) + " " + expected.Attributes;
        for (var i = 0; i < outcomes.Length; i++)
        {
            Assert.Equal(i % 4 == 3 ? nameof(CredentialErrorKind.BadSignature) : genuine, outcomes[i]);
        }

        // The chain and the holder's history; never the forgery.
        Assert.Equal(2, world.Verifier.Cache.Count);
    }

    private static CredentialChain Decode(CredentialChain chain) => CredentialChain.Decode(chain.Encoded);
}
