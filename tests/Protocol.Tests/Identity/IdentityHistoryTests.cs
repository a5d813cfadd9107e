using System.Security.Cryptography;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;
using static SecureChannels.Protocol.Tests.Identity.IdentityTestKit;

namespace SecureChannels.Protocol.Tests.Identity;

/// <summary>Creating, rotating, encoding and verifying identity histories, and every way a history is refused.</summary>
public sealed class IdentityHistoryTests
{
    [Fact]
    public async Task CreatedIdentityHasOneSelfSignedChangeAndVerifies()
    {
        var time = NewClock();
        var signer = NewSigner();

        var identity = await AgentIdentity.CreateAsync(signer, time);

        var change = Assert.Single(identity.History.Changes);
        Assert.Null(change.Change.PreviousChangeHash);
        Assert.Null(change.PreviousSignature);
        Assert.Equal(signer.PublicKey.ToArray(), change.Change.PublicKey);
        Assert.Equal(Start, change.Change.CreatedAt);
        var verified = identity.History.Verify();
        Assert.Equal(identity.Identifier, verified.Identifier);
        Assert.Equal(signer.PublicKey.ToArray(), verified.PublicKey.ToArray());
        Assert.Same(signer, identity.Signer);
    }

    [Fact]
    public async Task IdentifierIsTheSha256OfTheEncodedFirstChange()
    {
        var identity = await NewIdentityAsync(NewClock());

        Assert.Equal(SHA256.HashData(identity.History.Changes[0].Change.Encoded), identity.Identifier.Bytes.ToArray());
        Assert.Equal(identity.History.Changes[0].Change.ChangeHash, identity.Identifier.Bytes.ToArray());
    }

    [Fact]
    public async Task TwoIdentitiesHaveDifferentIdentifiers()
    {
        var time = NewClock();

        var first = await NewIdentityAsync(time);
        var second = await NewIdentityAsync(time);

        Assert.NotEqual(first.Identifier, second.Identifier);
    }

    [Fact]
    public async Task RotatingOnceKeepsTheIdentifierAndMakesTheNewKeyCurrent()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var next = NewSigner();
        time.Advance(TimeSpan.FromDays(30));

        var rotated = await identity.RotateAsync(next, time);

        Assert.Equal(identity.Identifier, rotated.Identifier);
        Assert.Equal(next.PublicKey.ToArray(), rotated.Verified.PublicKey.ToArray());
        Assert.NotEqual(identity.Verified.PublicKey.ToArray(), rotated.Verified.PublicKey.ToArray());
        Assert.Same(next, rotated.Signer);
        Assert.Equal(2, rotated.History.Changes.Length);
        var last = rotated.History.Changes[^1];
        Assert.Equal(identity.Verified.Current.ChangeHash, last.Change.PreviousChangeHash);
        Assert.NotNull(last.PreviousSignature);
        Assert.Equal(Start.AddDays(30), last.Change.CreatedAt);
        Assert.Equal(identity.Identifier, rotated.History.Verify().Identifier);
    }

    [Fact]
    public async Task RotatingSeveralTimesKeepsTheIdentifierAndEveryIntermediateHistoryVerifies()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var identifier = identity.Identifier;
        var keys = new List<byte[]> { identity.Verified.PublicKey.ToArray() };

        for (var i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromHours(1));
            identity = await identity.RotateAsync(NewSigner(), time);
            var verified = identity.History.Verify();
            Assert.Equal(identifier, verified.Identifier);
            Assert.Equal(identity.Signer.PublicKey.ToArray(), verified.PublicKey.ToArray());
            keys.Add(verified.PublicKey.ToArray());
        }

        Assert.Equal(6, identity.History.Changes.Length);
        Assert.Equal(6, keys.Select(Convert.ToHexString).Distinct().Count());
        Assert.Equal(keys.Select(Convert.ToHexString), identity.History.Changes.Select(c => Convert.ToHexString(c.Change.PublicKey)));
    }

    [Fact]
    public async Task RotationWhileTheClockIsBehindIsDatedAtItsPredecessor()
    {
        var identity = await NewIdentityAsync(NewClock());
        var earlier = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(Start.AddHours(-5));

        var rotated = await identity.RotateAsync(NewSigner(), earlier);

        Assert.Equal(Start, rotated.History.Changes[^1].Change.CreatedAt);
        Assert.Equal(identity.Identifier, rotated.History.Verify().Identifier);
    }

    [Fact]
    public async Task CreationTimeIsKeptToTheSecond()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(Start.AddMilliseconds(999));

        var identity = await NewIdentityAsync(time);

        Assert.Equal(Start, identity.History.Changes[0].Change.CreatedAt);
    }

    [Fact]
    public async Task HistoryRoundTripsThroughItsCanonicalEncoding()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 3);

        var decoded = IdentityHistory.Decode(identity.History.Encoded);

        Assert.Equal(identity.History.Encoded, decoded.Encoded);
        Assert.Equal(identity.History.Changes.ToArray(), decoded.Changes.ToArray());
        var verified = decoded.Verify();
        Assert.Equal(identity.Identifier, verified.Identifier);
        Assert.Equal(identity.Verified.PublicKey.ToArray(), verified.PublicKey.ToArray());
        Assert.Equal(HistoryComparison.Same, decoded.CompareTo(identity.History));
    }

    [Fact]
    public async Task ChangeRoundTripsThroughItsCanonicalEncoding()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 1);

        foreach (var signed in identity.History.Changes)
        {
            var decoded = IdentityChange.Decode(signed.Change.Encoded);
            Assert.Equal(signed.Change, decoded);
            Assert.Equal(signed.Change.Encoded, decoded.Encoded);
            Assert.Equal(signed.Change.ChangeHash, decoded.ChangeHash);
        }
    }

    [Fact]
    public async Task LoadAcceptsTheSignerOfTheCurrentKey()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 2);

        var loaded = AgentIdentity.Load(IdentityHistory.Decode(identity.History.Encoded), identity.Signer);

        Assert.Equal(identity.Identifier, loaded.Identifier);
        Assert.Same(identity.Signer, loaded.Signer);
    }

    [Fact]
    public async Task LoadRefusesASignerWhoseKeyIsNotTheCurrentOne()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var rotated = await identity.RotateAsync(NewSigner(), time);

        Assert.Equal(IdentityErrorKind.IdentifierMismatch, Assert.Throws<IdentityException>(() => AgentIdentity.Load(rotated.History, identity.Signer)).Kind);
        Assert.Equal(IdentityErrorKind.IdentifierMismatch, Assert.Throws<IdentityException>(() => AgentIdentity.Load(rotated.History, NewSigner())).Kind);
    }

    [Fact]
    public async Task ChangeSignedOnlyByAnUnrelatedKeyIsRefusedAsBadSignature()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var attacker = NewSigner();

        // The attacker links to the real history and signs both as the new key and as "the previous key".
        var forged = await HandRotationAsync(identity, attacker, Start.AddHours(1), previousSigner: attacker);

        VerifyFails(Append(identity, forged), IdentityErrorKind.BadSignature);
    }

    [Fact]
    public async Task ChangeWithoutThePreviousKeysSignatureIsRefusedAsBadSignature()
    {
        var identity = await NewIdentityAsync(NewClock());
        var next = NewSigner();

        var unauthorized = await HandRotationAsync(identity, next, Start.AddHours(1), previousSigner: null);

        var error = VerifyFails(Append(identity, unauthorized), IdentityErrorKind.BadSignature);
        Assert.Contains("Change 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChangeSignedByTheWrongPreviousKeyIsRefusedAsBadSignature()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var rotated = await identity.RotateAsync(NewSigner(), time);

        // Change 2 authorized by the key of change 0 instead of change 1.
        var next = NewSigner();
        var wronglyAuthorized = await HandRotationAsync(rotated, next, Start.AddHours(1), previousSigner: identity.Signer);

        var error = VerifyFails(Append(rotated, wronglyAuthorized), IdentityErrorKind.BadSignature);
        Assert.Contains("Change 2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChangeWithoutProofOfPossessionOfItsOwnKeyIsRefusedAsBadSignature()
    {
        var identity = await NewIdentityAsync(NewClock());
        var next = NewSigner();
        var change = new IdentityChange(identity.Verified.Current.ChangeHash, next.PublicKey, Start.AddHours(1));

        // Authorized by the previous key, but the "own" signature is also the previous key's.
        var signed = await SignAsync(change, identity.Signer, identity.Signer);

        VerifyFails(Append(identity, signed), IdentityErrorKind.BadSignature);
    }

    [Fact]
    public async Task FirstChangeSignedByAnotherKeyIsRefusedAsBadSignature()
    {
        var change = new IdentityChange(null, NewSigner().PublicKey, Start);
        var signed = await SignAsync(change, NewSigner(), null);

        VerifyFails(new IdentityHistory([signed]), IdentityErrorKind.BadSignature);
    }

    [Fact]
    public async Task SignatureUnderAnotherDomainIsRefusedAsBadSignature()
    {
        var signer = NewSigner();
        var change = new IdentityChange(null, signer.PublicKey, Start);
        var signature = await SignatureDomain.SignAsync(signer, SignatureDomain.KeyAttestation, change.Encoded);

        VerifyFails(new IdentityHistory([new SignedIdentityChange(change, signature, null)]), IdentityErrorKind.BadSignature);
    }

    [Fact]
    public async Task FlippedBitInASignatureIsRefusedAsBadSignature()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 2);

        for (var i = 0; i < identity.History.Changes.Length; i++)
        {
            var changes = identity.History.Changes.ToArray();
            changes[i] = changes[i] with { Signature = FlipBit(changes[i].Signature, 10) };
            VerifyFails(new IdentityHistory(changes), IdentityErrorKind.BadSignature);

            if (changes[i].PreviousSignature is { } previous)
            {
                changes = identity.History.Changes.ToArray();
                changes[i] = changes[i] with { PreviousSignature = FlipBit(previous, 63, 7) };
                VerifyFails(new IdentityHistory(changes), IdentityErrorKind.BadSignature);
            }
        }
    }

    [Fact]
    public async Task ReorderedHistoryIsRefusedAsBrokenChain()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 2);
        var changes = identity.History.Changes;

        VerifyFails(new IdentityHistory([changes[0], changes[2], changes[1]]), IdentityErrorKind.BrokenChain);
        VerifyFails(new IdentityHistory([changes[1], changes[0], changes[2]]), IdentityErrorKind.BrokenChain);
    }

    [Fact]
    public async Task HistoryWithAMissingMiddleChangeIsRefusedAsBrokenChain()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 2);
        var changes = identity.History.Changes;

        VerifyFails(new IdentityHistory([changes[0], changes[2]]), IdentityErrorKind.BrokenChain);
    }

    [Fact]
    public async Task ChangeSplicedFromAnotherIdentityIsRefusedAsBrokenChain()
    {
        var time = NewClock();
        var mine = await NewRotatedIdentityAsync(time, rotations: 1);
        var theirs = await NewRotatedIdentityAsync(time, rotations: 1);

        VerifyFails(new IdentityHistory([mine.History.Changes[0], theirs.History.Changes[1]]), IdentityErrorKind.BrokenChain);
    }

    [Fact]
    public async Task DuplicatedChangeIsRefusedAsBrokenChain()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 1);
        var changes = identity.History.Changes;

        VerifyFails(new IdentityHistory([changes[0], changes[1], changes[1]]), IdentityErrorKind.BrokenChain);
        VerifyFails(new IdentityHistory([changes[0], changes[0]]), IdentityErrorKind.BrokenChain);
    }

    [Fact]
    public async Task FirstChangeClaimingAPredecessorIsRefusedAsBrokenChain()
    {
        var signer = NewSigner();
        var change = new IdentityChange(new byte[IdentityChange.ChangeHashLength], signer.PublicKey, Start);
        var signed = await SignAsync(change, signer, null);

        var error = VerifyFails(new IdentityHistory([signed]), IdentityErrorKind.BrokenChain);
        Assert.Contains("Change 0", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FirstChangeCarryingAPreviousSignatureIsRefusedAsBrokenChain()
    {
        var signer = NewSigner();
        var change = new IdentityChange(null, signer.PublicKey, Start);
        var signed = await SignAsync(change, signer, signer);

        VerifyFails(new IdentityHistory([signed]), IdentityErrorKind.BrokenChain);
    }

    [Fact]
    public async Task ChangeDatedBeforeItsPredecessorIsRefusedAsNonMonotonicTime()
    {
        var time = NewClock();
        time.Advance(TimeSpan.FromDays(1));
        var identity = await NewIdentityAsync(time);
        var next = NewSigner();

        var backdated = await HandRotationAsync(identity, next, Start, identity.Signer);

        var error = VerifyFails(Append(identity, backdated), IdentityErrorKind.NonMonotonicTime);
        Assert.Contains("Change 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChangeDatedAtTheSameSecondAsItsPredecessorVerifies()
    {
        var identity = await NewIdentityAsync(NewClock());
        var next = NewSigner();

        var simultaneous = await HandRotationAsync(identity, next, identity.Verified.Current.CreatedAt, identity.Signer);

        Assert.Equal(identity.Identifier, Append(identity, simultaneous).Verify().Identifier);
    }

    [Fact]
    public void EmptyHistoryIsRefusedAsEmpty()
    {
        VerifyFails(new IdentityHistory([]), IdentityErrorKind.Empty);
    }

    [Fact]
    public async Task HistoryLongerThanTheLimitIsRefusedAsTooLong()
    {
        var identity = await NewIdentityAsync(NewClock());
        var change = identity.History.Changes[0];

        VerifyFails(new IdentityHistory(Enumerable.Repeat(change, IdentityLimits.MaxChanges + 1)), IdentityErrorKind.TooLong);
    }

    [Fact]
    public async Task HistoryOfExactlyTheMaximumLengthVerifiesAndRoundTrips()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var signer = identity.Signer;
        var changes = identity.History.Changes.ToList();
        var previous = changes[0].Change;
        while (changes.Count < IdentityLimits.MaxChanges)
        {
            var next = NewSigner();
            var change = new IdentityChange(previous.ChangeHash, next.PublicKey, Start.AddMinutes(changes.Count));
            changes.Add(await SignAsync(change, next, signer));
            (previous, signer) = (change, next);
        }

        var history = new IdentityHistory(changes);

        Assert.True(history.Encoded.Length <= IdentityLimits.MaxHistoryLength);
        Assert.Equal(identity.Identifier, IdentityHistory.Decode(history.Encoded).Verify().Identifier);
    }

    [Fact]
    public async Task TruncatedHistoryBytesAreRefusedAsMalformedAtEveryLength()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 2);
        var encoded = identity.History.Encoded;

        for (var length = 0; length < encoded.Length; length++)
        {
            var error = Assert.Throws<IdentityException>(() => IdentityHistory.Decode(encoded.AsMemory(0, length)));
            Assert.Equal(IdentityErrorKind.Malformed, error.Kind);
            Assert.Contains(WireKind(error), new[] { WireErrorKind.Truncated, WireErrorKind.Malformed });
        }
    }

    [Fact]
    public async Task HistoryCutAfterAWholeChangeIsAValidButOlderHistory()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 2);

        var older = new IdentityHistory(identity.History.Changes.Take(2));

        Assert.Equal(identity.Identifier, older.Verify().Identifier);
        Assert.Equal(HistoryComparison.Older, older.CompareTo(identity.History));
    }

    [Fact]
    public async Task FlippingAnyBitOfTheSignedPartsOfAHistoryNeverYieldsAHistoryThatVerifies()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 1);
        var encoded = identity.History.Encoded;

        for (var index = 0; index < encoded.Length; index++)
        {
            for (var bit = 0; bit < 8; bit += 7)
            {
                IdentityHistory decoded;
                try
                {
                    decoded = IdentityHistory.Decode(FlipBit(encoded, index, bit));
                }
                catch (IdentityException)
                {
                    continue;
                }

                Assert.Throws<IdentityException>(() => decoded.Verify());
            }
        }
    }

    [Fact]
    public async Task VerifiedIdentityFindsEachOfItsChangesByHash()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 2);

        foreach (var signed in identity.History.Changes)
        {
            Assert.Equal(signed.Change, identity.Verified.FindChange(signed.Change.ChangeHash));
        }

        Assert.Null(identity.Verified.FindChange(new byte[IdentityChange.ChangeHashLength]));
        Assert.Equal(identity.History.Changes[^1].Change, identity.Verified.Current);
    }

    [Fact]
    public void ChangeRefusesAPreviousHashOrKeyOfTheWrongLength()
    {
        var key = new byte[SignatureDomain.PublicKeyLength];

        Assert.Throws<ArgumentException>(() => new IdentityChange(new byte[31], key, Start));
        Assert.Throws<ArgumentException>(() => new IdentityChange(null, new byte[31], Start));
        Assert.Throws<ArgumentException>(() => new IdentityChange(null, new byte[33], Start));
    }
}
