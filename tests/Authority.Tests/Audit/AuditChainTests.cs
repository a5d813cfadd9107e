using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using SecureChannels.Authority.Audit;
using SecureChannels.Authority.Storage;
using SecureChannels.Protocol.Identity;
using static SecureChannels.Authority.Tests.Audit.AuditTestKit;

namespace SecureChannels.Authority.Tests.Audit;

public class AuditChainTests
{
    private const int Count = 10;

    [Fact]
    public async Task SealedChainVerifies()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);

        var result = AuditChain.Verify(records, authority.Verified);

        Assert.True(result.IsIntact);
        Assert.Equal(Count, result.RecordsChecked);
        Assert.Null(result.FirstBadSequence);
        Assert.Null(result.Failure);
        Assert.Null(result.Detail);
        Assert.Equal(new AuditHead(Count, records[^1].Hash), result.Head);
        Assert.Equal(Enumerable.Range(1, Count).Select(i => (long)i), records.Select(r => r.Sequence));
        Assert.Equal(new byte[32], records[0].PreviousHash);
        for (var i = 1; i < Count; i++)
        {
            Assert.Equal(records[i - 1].Hash, records[i].PreviousHash);
        }
    }

    [Fact]
    public async Task EmptyLogIsIntactWithoutHead()
    {
        var authority = await AuthorityAsync();

        var result = AuditChain.Verify([], authority.Verified);

        Assert.True(result.IsIntact);
        Assert.Equal(0, result.RecordsChecked);
        Assert.Null(result.Head);
    }

    [Fact]
    public async Task SealKeepsMillisecondsInUtc()
    {
        var authority = await AuthorityAsync();
        var at = new DateTimeOffset(2026, 3, 1, 11, 0, 0, 123, TimeSpan.FromHours(2)).AddTicks(4567);

        var record = await AuditChain.SealAsync(null, new AuditDraft(at, "a", "p", "issue", "t", "r"), authority);

        Assert.Equal(TimeSpan.Zero, record.At.Offset);
        Assert.Equal(new DateTimeOffset(2026, 3, 1, 9, 0, 0, 123, TimeSpan.Zero), record.At);
        Assert.Equal(HashOf(record), record.Hash);
        Assert.True(AuditChain.Verify([record], authority.Verified).IsIntact);
    }

    [Fact]
    public void EncodingIsTheDocumentedArray()
    {
        var previous = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1_772_355_600_123);

        var encoded = AuditChain.Encode(300, at, "a", "", "issue", "t", "é", previous);

        byte[] expected =
        [
            0x99, // array of 9
            0x01, // version 1
            0xcd, 0x01, 0x2c, // sequence 300 (uint16, its shortest form)
            0xcf, 0x00, 0x00, 0x01, 0x9c, 0xa8, 0xa0, 0x3e, 0xfb, // at_unix_ms 2026-03-01T09:00:00.123Z (uint64)
            0xa1, (byte)'a', // actor
            0xa0, // principal: empty
            0xa5, (byte)'i', (byte)'s', (byte)'s', (byte)'u', (byte)'e', // action
            0xa1, (byte)'t', // target
            0xa2, 0xc3, 0xa9, // reason: é in UTF-8
            0xc4, 0x20, .. previous, // previous_hash: bin 8, 32 bytes
        ];
        Assert.Equal(Convert.ToHexStringLower(expected), Convert.ToHexStringLower(encoded));
    }

    [Fact]
    public void EncodeRefusesWhatNoRecordCanHold()
    {
        var zeros = new byte[32];
        Assert.Throws<ArgumentOutOfRangeException>(() => AuditChain.Encode(0, Start, "a", "p", "x", "t", "r", zeros));
        Assert.Throws<ArgumentOutOfRangeException>(() => AuditChain.Encode(1, DateTimeOffset.UnixEpoch.AddMilliseconds(-1), "a", "p", "x", "t", "r", zeros));
        Assert.Throws<ArgumentException>(() => AuditChain.Encode(1, Start, "a", "p", "x", "t", "r", new byte[31]));

        // A lone surrogate would be encoded as U+FFFD, hashing alike with a text that really has U+FFFD.
        Assert.Throws<ArgumentException>(() => AuditChain.Encode(1, Start, "a\uD800", "p", "x", "t", "r", zeros));
        Assert.Throws<ArgumentException>(() => AuditChain.Encode(1, Start, "a", "p", "x", "t", "\uDC00r", zeros));
    }

    [Fact]
    public async Task SealRefusesALoneSurrogate()
    {
        var authority = await AuthorityAsync();
        var draft = new AuditDraft(Start, "a", "p", "issue", "t", "bad \uD83D text");

        await Assert.ThrowsAsync<ArgumentException>(() => AuditChain.SealAsync(null, draft, authority));
    }

    public static TheoryData<string> Fields => ["actor", "principal", "action", "target", "reason", "at", "sequence-in-hash"];

    [Theory]
    [MemberData(nameof(Fields))]
    public async Task FieldEditedWithoutRehashIsHashMismatch(string field)
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        var r = records[4];
        records[4] = field switch
        {
            "actor" => r with { Actor = "sc1-mallory" },
            "principal" => r with { Principal = r.Principal + " " },
            "action" => r with { Action = "enroll" },
            "target" => r with { Target = "credential-9999" },
            "reason" => r with { Reason = "nothing to see" },
            "at" => r with { At = r.At.AddMilliseconds(1) },

            // The stored hash swapped for another record's: the content no longer hashes to it.
            _ => r with { Hash = records[5].Hash },
        };

        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.HashMismatch, 5);
    }

    [Fact]
    public async Task FieldEditedAndRehashedButNotResignedIsBadSignature()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        records[4] = Rehash(records[4] with { Reason = "approved by nobody" });

        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.BadSignature, 5);
    }

    [Fact]
    public async Task FieldEditedAndResignedBreaksTheNextLink()
    {
        // Whoever holds the authority's key can re-seal one record, but not without the next one noticing.
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        records[4] = await ResignAsync(records[4] with { Target = "credential-0000" }, authority.Signer);

        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.BrokenLink, 6);
    }

    [Fact]
    public async Task CorruptSignatureIsBadSignature()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        var flipped = records.ToList();
        var signature = records[6].Signature.ToArray();
        signature[10] ^= 0x01;
        flipped[6] = records[6] with { Signature = signature };
        var shortened = records.ToList();
        shortened[7] = records[7] with { Signature = records[7].Signature[..63] };

        AssertFails(AuditChain.Verify(flipped, authority.Verified), AuditFailureKind.BadSignature, 7);
        AssertFails(AuditChain.Verify(shortened, authority.Verified), AuditFailureKind.BadSignature, 8);
    }

    [Fact]
    public async Task RemovedMiddleRecordIsSequenceGap()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        records.RemoveAt(4);

        var result = AuditChain.Verify(records, authority.Verified);

        AssertFails(result, AuditFailureKind.SequenceGap, 5);
        Assert.Equal(new AuditHead(4, records[3].Hash), result.Head);
    }

    [Fact]
    public async Task RemovedFirstRecordIsSequenceGapAtOne()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        records.RemoveAt(0);

        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.SequenceGap, 1);
    }

    [Fact]
    public async Task RemovedRecordBeforeTheLastIsSequenceGap()
    {
        // The jump is the last thing read: no record follows to tell a reorder, and it is a gap.
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        records.RemoveAt(Count - 2);

        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.SequenceGap, Count - 1);
    }

    [Fact]
    public async Task RenumberedRecordsAfterARemovalAreBrokenLink()
    {
        // Closing the gap by renumbering takes re-sealing, and the link to the removed record's hash stays.
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        records.RemoveAt(4);
        for (var i = 4; i < records.Count; i++)
        {
            records[i] = await ResignAsync(records[i] with { Sequence = i + 1 }, authority.Signer);
        }

        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.BrokenLink, 5);
    }

    [Fact]
    public async Task SwappedAdjacentRecordsAreReordered()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        (records[3], records[4]) = (records[4], records[3]);

        var result = AuditChain.Verify(records, authority.Verified);

        AssertFails(result, AuditFailureKind.Reordered, 4);
        Assert.Equal(new AuditHead(3, records[2].Hash), result.Head);
    }

    [Fact]
    public async Task SwappedDistantRecordsAreReordered()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        (records[2], records[7]) = (records[7], records[2]);

        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.Reordered, 3);
    }

    [Fact]
    public async Task RepeatedRecordIsReordered()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        records.Add(records[2]);

        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.Reordered, Count + 1);
    }

    [Fact]
    public async Task ChangedPreviousHashIsBrokenLink()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        var previous = records[4].PreviousHash.ToArray();
        previous[0] ^= 0x80;
        var linkedElsewhere = records[4] with { PreviousHash = previous };

        // Checked before the hash, so it is a broken link whether or not the hash was recomputed and re-signed.
        records[4] = linkedElsewhere;
        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.BrokenLink, 5);
        records[4] = await ResignAsync(linkedElsewhere, authority.Signer);
        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.BrokenLink, 5);
    }

    [Fact]
    public async Task FirstRecordWithNonZeroPreviousHashIsBrokenLink()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        records[0] = await ResignAsync(records[0] with { PreviousHash = records[1].Hash }, authority.Signer);

        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.BrokenLink, 1);
    }

    [Fact]
    public async Task RecordSignedByAnotherIdentityIsBadSignature()
    {
        var authority = await AuthorityAsync(1);
        var other = await AuthorityAsync(2);
        var records = await ChainAsync(authority, Count);
        records[5] = await ResignAsync(records[5], other.Signer);

        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.BadSignature, 6);
        AssertFails(AuditChain.Verify(await ChainAsync(other, 3), authority.Verified), AuditFailureKind.BadSignature, 1);
    }

    [Fact]
    public async Task RecordSignedUnderAnotherDomainIsBadSignature()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, 3);
        var signature = await SignatureDomain.SignAsync(
            authority.Signer, SignatureDomain.Credential, records[1].Hash);
        records[1] = records[1] with { Signature = signature };

        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.BadSignature, 2);
    }

    [Fact]
    public async Task LoneSurrogateInAStoredRecordIsMalformed()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, 3);
        records[1] = records[1] with { Actor = "sc1-\uDFFF" };

        AssertFails(AuditChain.Verify(records, authority.Verified), AuditFailureKind.Malformed, 2);
    }

    [Fact]
    public async Task TailTruncationIsDetectedOnlyAgainstAHeadKeptElsewhere()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        var head = AuditChain.Verify(records, authority.Verified).Head!;
        var truncated = records.Take(Count - 3).ToList();

        // The shorter log is perfectly chained: nothing in it shows the cut.
        var alone = AuditChain.Verify(truncated, authority.Verified);
        Assert.True(alone.IsIntact);
        Assert.Equal(Count - 3, alone.RecordsChecked);

        var result = AuditChain.Verify(truncated, authority.Verified, head);
        AssertFails(result, AuditFailureKind.Truncated, Count - 2);
        Assert.Equal(new AuditHead(Count - 3, truncated[^1].Hash), result.Head);

        AssertFails(AuditChain.Verify([], authority.Verified, head), AuditFailureKind.Truncated, 1);
    }

    [Fact]
    public async Task LogThatGrewPastTheExpectedHeadVerifies()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        var head = new AuditHead(4, records[3].Hash);

        var result = AuditChain.Verify(records, authority.Verified, head);

        Assert.True(result.IsIntact);
        Assert.Equal(Count, result.Head!.Sequence);
        Assert.True(AuditChain.Verify(records.Take(4), authority.Verified, head).IsIntact);
    }

    [Fact]
    public async Task TailRewrittenWithTheAuthorityKeyIsDetectedOnlyAgainstAHead()
    {
        // Whoever holds the key can rewrite everything from a record on: the log is then chained and signed,
        // and only a head taken before the rewrite shows it.
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);
        var head = new AuditHead(8, records[7].Hash);
        var rewritten = records.Take(5).ToList();
        for (var i = 6; i <= Count; i++)
        {
            rewritten.Add(await AuditChain.SealAsync(rewritten[^1], Draft(i) with { Reason = "rewritten" }, authority));
        }

        Assert.True(AuditChain.Verify(rewritten, authority.Verified).IsIntact);
        var result = AuditChain.Verify(rewritten, authority.Verified, head);
        AssertFails(result, AuditFailureKind.HeadMismatch, 8);
    }

    [Fact]
    public async Task RecordsSignedBeforeARotationStillVerify()
    {
        var clock = new FakeTimeProvider(Start);
        var before = await AgentIdentity.CreateAsync(Signer(1), clock);
        var records = await ChainAsync(before, 3);
        clock.Advance(TimeSpan.FromDays(30));
        var after = await before.RotateAsync(Signer(3), clock);
        clock.Advance(TimeSpan.FromDays(30));
        var twice = await after.RotateAsync(Signer(4), clock);
        records.Add(await AuditChain.SealAsync(records[^1], Draft(4), after));
        records.Add(await AuditChain.SealAsync(records[^1], Draft(5), twice));

        var result = AuditChain.Verify(records, twice.Verified);

        Assert.True(result.IsIntact, result.Detail);
        Assert.Equal(5, result.RecordsChecked);

        // A verifier still holding the history from before the rotation does not know the new key.
        AssertFails(AuditChain.Verify(records, before.Verified), AuditFailureKind.BadSignature, 4);
    }

    [Fact]
    public async Task VerifiesAStoreLogPageByPage()
    {
        var authority = await AuthorityAsync();
        var (transaction, fake) = AuditOnlyTransaction.Create();
        for (var i = 1; i <= Count; i++)
        {
            var appended = await AuditChain.AppendAsync(transaction, Draft(i), authority);
            Assert.Equal(i, appended.Sequence);
        }

        var result = await AuditChain.VerifyAsync(transaction, authority.Verified, pageSize: 3);

        Assert.True(result.IsIntact, result.Detail);
        Assert.Equal(Count, result.RecordsChecked);
        Assert.Equal(new AuditHead(Count, fake.Records[^1].Hash), result.Head);
        Assert.Equal([(1L, 3), (4L, 3), (7L, 3), (10L, 3), (11L, 3)], fake.Reads);
    }

    [Fact]
    public async Task StoreLogWithARemovedRecordStopsAtTheGap()
    {
        var authority = await AuthorityAsync();
        var (transaction, fake) = AuditOnlyTransaction.Create();
        fake.Records.AddRange(await ChainAsync(authority, Count));
        fake.Records.RemoveAt(5);

        var result = await AuditChain.VerifyAsync(transaction, authority.Verified, pageSize: 4);

        AssertFails(result, AuditFailureKind.SequenceGap, 6);

        // Reading stopped at the failure instead of going on to the end of the log.
        Assert.Equal([(1L, 4), (5L, 4)], fake.Reads);
    }

    [Fact]
    public async Task StoreLogTruncationIsDetectedAgainstAHead()
    {
        var authority = await AuthorityAsync();
        var (transaction, fake) = AuditOnlyTransaction.Create();
        fake.Records.AddRange(await ChainAsync(authority, Count));
        var head = (await AuditChain.VerifyAsync(transaction, authority.Verified)).Head;
        fake.Records.RemoveRange(7, 3);

        AssertFails(await AuditChain.VerifyAsync(transaction, authority.Verified, head, pageSize: 5), AuditFailureKind.Truncated, 8);
    }

    [Fact]
    public async Task VerifiesAStreamedLog()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, Count);

        Assert.True((await AuditChain.VerifyAsync(ToAsync(records), authority.Verified)).IsIntact);
        (records[1], records[2]) = (records[2], records[1]);
        AssertFails(await AuditChain.VerifyAsync(ToAsync(records), authority.Verified), AuditFailureKind.Reordered, 2);
    }

    [Fact]
    public void HeadTextRoundTrips()
    {
        var head = new AuditHead(42, Enumerable.Range(0, 32).Select(i => (byte)(i * 7)).ToArray());

        var text = head.ToString();

        Assert.Equal("42:" + Convert.ToHexStringLower(head.Hash), text);
        Assert.Equal(head, AuditHead.Parse(text));
        Assert.Equal(head, AuditHead.Parse(text.ToUpperInvariant()));
    }

    [Theory]
    [InlineData("")]
    [InlineData("42")]
    [InlineData(":0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("0:0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("-1:0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("+1:0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData(" 1:0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("1:000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("1:00000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("1:000000000000000000000000000000000000000000000000000000000000000g")]
    [InlineData("99999999999999999999:0000000000000000000000000000000000000000000000000000000000000000")]
    public void HeadParseRefusesAnythingElse(string text)
    {
        Assert.False(AuditHead.TryParse(text, out _));
        Assert.Throws<FormatException>(() => AuditHead.Parse(text));
    }

    [Fact]
    public void HeadsCompareByValue()
    {
        var hash = RandomNumberGenerator.GetBytes(32);

        Assert.Equal(new AuditHead(3, hash), new AuditHead(3, hash.ToArray()));
        Assert.NotEqual(new AuditHead(3, hash), new AuditHead(4, hash));
        Assert.Throws<ArgumentException>(() => new AuditHead(3, new byte[31]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AuditHead(0, hash));
    }
}
