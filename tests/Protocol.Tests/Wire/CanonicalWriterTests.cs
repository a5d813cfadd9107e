using System.Buffers;
using MessagePack;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Tests.Wire;

/// <summary>The writer emits exactly the canonical MessagePack forms of docs/protocol.md §4.</summary>
public sealed class CanonicalWriterTests
{
    private delegate void Write(ref CanonicalWriter writer);

    private static byte[] Written(Write write)
    {
        var writer = new CanonicalWriter();
        write(ref writer);
        return writer.ToArray();
    }

    [Theory]
    [InlineData(0UL, "00")]
    [InlineData(1UL, "01")]
    [InlineData(127UL, "7f")]
    [InlineData(128UL, "cc80")]
    [InlineData(255UL, "ccff")]
    [InlineData(256UL, "cd0100")]
    [InlineData(65535UL, "cdffff")]
    [InlineData(65536UL, "ce00010000")]
    [InlineData(4294967295UL, "ceffffffff")]
    [InlineData(4294967296UL, "cf0000000100000000")]
    [InlineData(ulong.MaxValue, "cfffffffffffffffff")]
    public void UnsignedIntegersUseTheShortestForm(ulong value, string hex)
    {
        Assert.Equal(hex, Convert.ToHexStringLower(Written((ref CanonicalWriter w) => w.WriteUnsigned(value))));
    }

    [Theory]
    [InlineData(0, "c400")]
    [InlineData(3, "c403")]
    [InlineData(255, "c4ff")]
    [InlineData(256, "c50100")]
    [InlineData(65536, "c600010000")]
    public void ByteStringsAreBinWithTheShortestHeader(int length, string headerHex)
    {
        var bytes = Written((ref CanonicalWriter w) => w.WriteBytes(new byte[length]));

        Assert.Equal(headerHex, Convert.ToHexStringLower(bytes.AsSpan(0, bytes.Length - length)));
        Assert.Equal(bytes.Length - length, headerHex.Length / 2);
    }

    [Theory]
    [InlineData("", "a0")]
    [InlineData("a", "a1")]
    [InlineData("0123456789012345678901234567890", "bf")]
    [InlineData("01234567890123456789012345678901", "d920")]
    public void TextIsStrWithTheShortestHeader(string text, string headerHex)
    {
        var bytes = Written((ref CanonicalWriter w) => w.WriteText(text));

        Assert.StartsWith(headerHex, Convert.ToHexStringLower(bytes), StringComparison.Ordinal);
        Assert.Equal((headerHex.Length / 2) + text.Length, bytes.Length);
    }

    [Fact]
    public void TextIsUtf8()
    {
        Assert.Equal("a2c3a9", Convert.ToHexStringLower(Written((ref CanonicalWriter w) => w.WriteText("é"))));
    }

    [Theory]
    [InlineData(0, "90", "80")]
    [InlineData(15, "9f", "8f")]
    [InlineData(16, "dc0010", "de0010")]
    [InlineData(65536, "dd00010000", "df00010000")]
    public void ArrayAndMapHeadersUseTheShortestForm(int count, string arrayHex, string mapHex)
    {
        Assert.Equal(arrayHex, Convert.ToHexStringLower(Written((ref CanonicalWriter w) => w.WriteArray(count))));
        Assert.Equal(mapHex, Convert.ToHexStringLower(Written((ref CanonicalWriter w) => w.WriteMap(count))));
    }

    [Fact]
    public void NilAndRawAreWrittenVerbatim()
    {
        Assert.Equal("c0", Convert.ToHexStringLower(Written((ref CanonicalWriter w) => w.WriteNil())));
        Assert.Equal("92c0a0", Convert.ToHexStringLower(Written((ref CanonicalWriter w) =>
        {
            w.WriteArray(2);
            w.WriteRaw([0xc0, 0xa0]);
        })));
    }

    [Fact]
    public void MessagePackWriterHelperAgreesWithTheCanonicalWriterOnCanonicalInput()
    {
        var canonical = Written((ref CanonicalWriter w) =>
        {
            w.WriteArray(3);
            w.WriteUnsigned(300);
            w.WriteBytes([1, 2]);
            w.WriteText("x");
        });

        var viaHelper = Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(3);
            w.Write(300UL);
            w.Write(new byte[] { 1, 2 });
            w.Write("x");
        });

        Assert.Equal(canonical, viaHelper);
    }
}

/// <summary>Hand-made MessagePack for tests: <see cref="MessagePackWriter"/> can write non-canonical forms the protocol's writer never would.</summary>
internal static class Msg
{
    public delegate void Writer(ref MessagePackWriter writer);

    public static byte[] Build(Writer write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer) { OldSpec = false };
        write(ref writer);
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    public static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    /// <summary>A str in the str8 form (0xd9), even when shorter than 32 bytes.</summary>
    public static void WriteStr8(ref MessagePackWriter writer, string text)
    {
        var utf8 = System.Text.Encoding.UTF8.GetBytes(text);
        writer.WriteRaw(new byte[] { 0xd9, (byte)utf8.Length });
        writer.WriteRaw(utf8);
    }

    /// <summary>A bin in the bin16 form (0xc5), even when shorter than 256 bytes.</summary>
    public static void WriteBin16(ref MessagePackWriter writer, ReadOnlySpan<byte> bytes)
    {
        writer.WriteRaw(new byte[] { 0xc5, (byte)(bytes.Length >> 8), (byte)bytes.Length });
        writer.WriteRaw(bytes);
    }

    /// <summary>Raw UTF-8-or-not bytes under a fixstr header.</summary>
    public static void WriteStrBytes(ref MessagePackWriter writer, ReadOnlySpan<byte> bytes)
    {
        writer.WriteStringHeader(bytes.Length);
        writer.WriteRaw(bytes);
    }
}
