using System.Text;
using SecureChannels.Authority.Audit;
using SecureChannels.Authority.Storage;
using static SecureChannels.Authority.Tests.Audit.AuditTestKit;

namespace SecureChannels.Authority.Tests.Audit;

public class AuditJsonTests
{
    /// <summary>Texts that break naive JSON, terminals or UTF-8 handling; each must come back exactly.</summary>
    public static readonly string[] HostileTexts =
    [
        string.Empty,
        "\"quoted\" and \\backslashed\\ and /slashed/",
        "line\nbreak\r\nand\ttab and \0 nul and \u001f unit separator and \u007f delete",
        "}\n{\"sequence\":1,\"at\":\"2026-03-01T09:00:00.000Z\"}",
        "unicode: é ß Ω 漢字 🔐 👩‍👩‍👧 e\u0301 (combining)",
        "bidi \u202Eevil\u202C and \u2028line separator\u2029 and \uFEFF bom and \uFFFD replacement",
        "html <script>alert('x')</script> & + ` ' =",
        new string('x', 70_000),
        "\U0010FFFF the last code point and \uD800\uDC00 the first astral one",
    ];

    [Fact]
    public async Task ExportThenImportGivesTheSameRecords()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, 25);

        var text = await ExportAsync(records);
        var back = await ImportAsync(text);

        Assert.Equal(records.Count, back.Count);
        for (var i = 0; i < records.Count; i++)
        {
            AssertSame(records[i], back[i]);
        }

        Assert.True(AuditChain.Verify(back, authority.Verified).IsIntact);
        Assert.Equal(records.Count, text.Split('\n').Length - 1);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExportIsReadByVerificationAsItStreams()
    {
        var authority = await AuthorityAsync();
        var (transaction, fake) = AuditOnlyTransaction.Create();
        fake.Records.AddRange(await ChainAsync(authority, 12));
        using var file = new MemoryStream();

        await AuditJson.ExportAsync(transaction, file, pageSize: 5);
        file.Position = 0;
        var result = await AuditChain.VerifyAsync(AuditJson.ReadAsync(file), authority.Verified);

        Assert.True(result.IsIntact, result.Detail);
        Assert.Equal(new AuditHead(12, fake.Records[^1].Hash), result.Head);
    }

    [Fact]
    public async Task LineHasTheDocumentedFields()
    {
        var authority = await AuthorityAsync();
        var record = await AuditChain.SealAsync(null, new AuditDraft(Start.AddMilliseconds(5), "sc1-a", "user:b", "issue", "c", "d"), authority);

        var line = AuditJson.Format(record);

        var expected = "{\"sequence\":1,\"at\":\"2026-03-01T09:00:00.005Z\",\"actor\":\"sc1-a\",\"principal\":\"user:b\",\"action\":\"issue\",\"target\":\"c\",\"reason\":\"d\","
            + $"\"previous_hash\":\"{new string('0', 64)}\",\"hash\":\"{Convert.ToHexStringLower(record.Hash)}\",\"signature\":\"{Convert.ToHexStringLower(record.Signature)}\"}}";
        Assert.Equal(expected, line);
    }

    [Fact]
    public async Task HostileTextsRoundTripExactly()
    {
        var authority = await AuthorityAsync();
        var records = new List<AuditRecord>();
        foreach (var text in HostileTexts)
        {
            records.Add(await AuditChain.SealAsync(records.LastOrDefault(), new AuditDraft(Start, text, text, text, text, text), authority));
        }

        var exported = await ExportAsync(records);
        var back = await ImportAsync(exported);

        // Escaped to ASCII: one line per record, nothing a terminal could interpret.
        Assert.All(exported, c => Assert.True(c is '\n' or (>= ' ' and <= '~')));
        Assert.Equal(records.Count, exported.Count(c => c == '\n'));
        Assert.Equal(records.Count, back.Count);
        for (var i = 0; i < records.Count; i++)
        {
            AssertSame(records[i], back[i]);
            AssertSame(records[i], AuditJson.ParseLine(AuditJson.Format(records[i]), i + 1));
        }

        Assert.True(AuditChain.Verify(back, authority.Verified).IsIntact);
    }

    [Fact]
    public async Task UnescapedUnicodeAndEscapedNamesAreRead()
    {
        // Another tool may write UTF-8 as is and escape differently; the values are what count.
        var authority = await AuthorityAsync();
        var record = await AuditChain.SealAsync(null, new AuditDraft(Start, "sc1-ä", "漢字", "issue", "🔐", ""), authority);
        var line = AuditJson.Format(record)
            .Replace("\\u00E4", "ä", StringComparison.Ordinal)
            .Replace("\"actor\"", "\"\\u0061ctor\"", StringComparison.Ordinal)
            .Replace(",", " , ", StringComparison.Ordinal);

        AssertSame(record, AuditJson.ParseLine(line, 1));
    }

    [Fact]
    public async Task CrLfBomAndBlankLinesAreAccepted()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, 3);
        var text = "\uFEFF" + string.Join("\r\n\r\n", records.Select(AuditJson.Format)) + "\r\n  \n";

        var back = await ImportAsync(text);

        Assert.Equal(3, back.Count);
        AssertSame(records[2], back[2]);
    }

    [Fact]
    public async Task LastLineNeedsNoLineEnd()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, 2);

        var back = await ImportAsync(string.Join('\n', records.Select(AuditJson.Format)));

        Assert.Equal(2, back.Count);
        AssertSame(records[1], back[1]);
    }

    public static TheoryData<string, string> MalformedLines()
    {
        var good = GoodLine();
        string Replace(string from, string to)
        {
            Assert.Contains(from, good, StringComparison.Ordinal);
            return good.Replace(from, to, StringComparison.Ordinal);
        }

        var hash = good[(good.IndexOf("\"hash\":\"", StringComparison.Ordinal) + 8)..][..64];
        return new TheoryData<string, string>
        {
            { "not json", "not json" },
            { "empty object", "{}" },
            { "array", "[1,2,3]" },
            { "string", "\"record\"" },
            { "unclosed", good[..^1] },
            { "cut in a string", good[..40] },
            { "trailing garbage", good + " x" },
            { "two objects", good + good },
            { "trailing comma", good[..^1] + ",}" },
            { "comment", good[..^1] + "/* hi */}" },
            { "missing field", Replace("\"reason\":\"reason 1\",", string.Empty) },
            { "duplicate field", Replace("\"actor\":", "\"actor\":\"x\",\"actor\":") },
            { "unknown field", Replace("{", "{\"extra\":1,") },
            { "sequence as string", Replace("\"sequence\":1", "\"sequence\":\"1\"") },
            { "sequence zero", Replace("\"sequence\":1", "\"sequence\":0") },
            { "sequence negative", Replace("\"sequence\":1", "\"sequence\":-1") },
            { "sequence fraction", Replace("\"sequence\":1", "\"sequence\":1.5") },
            { "sequence too big", Replace("\"sequence\":1", "\"sequence\":99999999999999999999") },
            { "text as number", Replace("\"reason\":\"reason 1\"", "\"reason\":1") },
            { "text as null", Replace("\"reason\":\"reason 1\"", "\"reason\":null") },
            { "text as object", Replace("\"reason\":\"reason 1\"", "\"reason\":{\"a\":1}") },
            { "text as nested arrays", Replace("\"reason\":\"reason 1\"", "\"reason\":[[[[1]]]]") },
            { "time without ms", Replace(".007Z", "Z") },
            { "time with offset", Replace(".007Z", ".007+00:00") },
            { "time not a date", Replace("2026-03-01T09:00:01.007Z", "2026-02-30T09:00:01.007Z") },
            { "hash short", Replace(hash, hash[..62]) },
            { "hash not hex", Replace(hash, "zz" + hash[2..]) },
            { "hash escaped", Replace(hash, "\\u0030" + hash[1..]) },
            { "signature short", Replace("\"signature\":\"", "\"signature\":\"00") },
            { "lone surrogate escape", Replace("\"reason\":\"reason 1\"", "\"reason\":\"\\ud800\"") },
            { "bad escape", Replace("\"reason\":\"reason 1\"", "\"reason\":\"\\x41\"") },
            { "raw control character", Replace("\"reason\":\"reason 1\"", "\"reason\":\"a\u0001b\"") },
        };
    }

    [Theory]
    [MemberData(nameof(MalformedLines))]
    public async Task MalformedLineIsReportedWithItsNumber(string name, string badLine)
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, 3);
        var text = $"{AuditJson.Format(records[0])}\n{AuditJson.Format(records[1])}\n{badLine}\n{AuditJson.Format(records[2])}\n";

        var error = await Assert.ThrowsAsync<AuditFormatException>(() => ImportAsync(text));

        Assert.True(error.LineNumber == 3, $"{name}: reported line {error.LineNumber}");
        Assert.StartsWith("Line 3: ", error.Message, StringComparison.Ordinal);
        Assert.Equal(3, Assert.Throws<AuditFormatException>(() => AuditJson.ParseLine(badLine, 3)).LineNumber);
    }

    [Fact]
    public void ErrorNamesTheFieldNotTheContent()
    {
        var line = GoodLine().Replace("\"reason\":\"reason 1\"", "\"reason\":\"<secret>\",\"reason\":\"x\"", StringComparison.Ordinal);

        var error = Assert.Throws<AuditFormatException>(() => AuditJson.ParseLine(line, 7));

        Assert.Equal("Line 7: the field reason appears twice.", error.Message);
    }

    [Fact]
    public async Task InvalidUtf8IsReportedWithItsLineNumber()
    {
        var good = Encoding.UTF8.GetBytes(GoodLine() + "\n");
        var bad = Encoding.UTF8.GetBytes(GoodLine().Replace("reason 1", "reason \u00e9", StringComparison.Ordinal));
        var index = Array.IndexOf(bad, (byte)0xc3);
        bad[index] = 0xff;
        using var input = new MemoryStream([.. good, .. bad]);

        var error = await Assert.ThrowsAsync<AuditFormatException>(() => ReadAllAsync(input));

        Assert.Equal(2, error.LineNumber);
    }

    [Fact]
    public async Task GoodLinesBeforeABadOneAreHandedOutFirst()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, 2);
        using var input = new MemoryStream(Encoding.UTF8.GetBytes($"{AuditJson.Format(records[0])}\n{AuditJson.Format(records[1])}\n{{\n"));
        var seen = new List<long>();

        var error = await Assert.ThrowsAsync<AuditFormatException>(async () =>
        {
            await foreach (var record in AuditJson.ReadAsync(input))
            {
                seen.Add(record.Sequence);
            }
        });

        Assert.Equal([1L, 2L], seen);
        Assert.Equal(3, error.LineNumber);
    }

    [Fact]
    public async Task OverlongLineIsRefusedNotBuffered()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, 1);
        var bytes = new byte[AuditJson.MaxLineBytes + 10];
        bytes.AsSpan().Fill((byte)' ');
        var first = Encoding.UTF8.GetBytes(AuditJson.Format(records[0]) + "\n");
        using var input = new MemoryStream([.. first, .. bytes]);

        var error = await Assert.ThrowsAsync<AuditFormatException>(() => ReadAllAsync(input));

        Assert.Equal(2, error.LineNumber);
    }

    [Fact]
    public async Task RecordWithALoneSurrogateIsNotExported()
    {
        var authority = await AuthorityAsync();
        var record = (await ChainAsync(authority, 1))[0] with { Reason = "\uD800" };

        Assert.Throws<ArgumentException>(() => AuditJson.Format(record));
        await Assert.ThrowsAsync<ArgumentException>(() => ExportAsync([record]));
    }

    [Fact]
    public async Task TamperedExportFailsVerification()
    {
        var authority = await AuthorityAsync();
        var records = await ChainAsync(authority, 5);
        var lines = (await ExportAsync(records)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines[2] = lines[2].Replace("\"actor\":\"sc1-actor-3\"", "\"actor\":\"sc1-mallory\"", StringComparison.Ordinal);

        var back = await ImportAsync(string.Join('\n', lines));

        AssertFails(AuditChain.Verify(back, authority.Verified), AuditFailureKind.HashMismatch, 3);
    }

    /// <summary>A well-formed line; parsing never looks at whether its hash and signature verify.</summary>
    private static string GoodLine() => AuditJson.Format(new AuditRecord(
        1,
        Draft(1).At,
        "sc1-actor-1",
        "user:1@example.org",
        "revoke",
        "credential-0001",
        "reason 1",
        new byte[32],
        Enumerable.Repeat((byte)0x11, 32).ToArray(),
        Enumerable.Repeat((byte)0x22, 64).ToArray()));

    private static async Task<string> ExportAsync(IEnumerable<AuditRecord> records)
    {
        using var output = new MemoryStream();
        await AuditJson.WriteAsync(ToAsync(records), output);
        return Encoding.UTF8.GetString(output.ToArray());
    }

    private static async Task<List<AuditRecord>> ImportAsync(string text)
    {
        // A small chunk size is not configurable, so a slow stream makes lines straddle reads instead.
        using var input = new TrickleStream(Encoding.UTF8.GetBytes(text), 7);
        return await ReadAllAsync(input);
    }

    private static async Task<List<AuditRecord>> ReadAllAsync(Stream input)
    {
        var records = new List<AuditRecord>();
        await foreach (var record in AuditJson.ReadAsync(input))
        {
            records.Add(record);
        }

        return records;
    }

    /// <summary>A read-only stream that hands out at most a few bytes per read.</summary>
    private sealed class TrickleStream(byte[] bytes, int step) : MemoryStream(bytes, writable: false)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, step));

        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, step)]);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, step)], cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            base.ReadAsync(buffer, offset, Math.Min(count, step), cancellationToken);
    }
}
