using MessagePack;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Tests.Wire;

/// <summary>
/// The reader and <see cref="CanonicalEncoding.Decode"/> on small hand-made inputs: every non-canonical or broken form
/// is refused with its <see cref="WireErrorKind"/>, and never with another exception.
/// </summary>
public sealed class CanonicalReaderTests
{
    private const int Limit = 1024;

    private static ulong DecodeUnsigned(byte[] input) =>
        CanonicalEncoding.Decode(input, "test", Limit, static (ref CanonicalReader r) => r.ReadUnsigned("n"), static v =>
        {
            var w = new CanonicalWriter();
            w.WriteUnsigned(v);
            return w.ToArray();
        });

    private static byte[] DecodeBytes(byte[] input, int min, int max) =>
        CanonicalEncoding.Decode(input, "test", Limit, (ref CanonicalReader r) => r.ReadBytes("b", min, max), static v =>
        {
            var w = new CanonicalWriter();
            w.WriteBytes(v);
            return w.ToArray();
        });

    private static string DecodeText(byte[] input, int maxBytes = 64) =>
        CanonicalEncoding.Decode(input, "test", Limit, (ref CanonicalReader r) => r.ReadText("t", maxBytes), static v =>
        {
            var w = new CanonicalWriter();
            w.WriteText(v);
            return w.ToArray();
        });

    /// <summary>A versioned pair: <c>[version = 1, n: uint]</c>.</summary>
    private static ulong DecodeVersioned(byte[] input) =>
        CanonicalEncoding.Decode(
            input,
            "pair",
            Limit,
            static (ref CanonicalReader r) =>
            {
                r.ReadArray("pair", 2, 2);
                r.ReadVersion(1);
                return r.ReadUnsigned("n");
            },
            static v =>
            {
                var w = new CanonicalWriter();
                w.WriteArray(2);
                w.WriteUnsigned(1);
                w.WriteUnsigned(v);
                return w.ToArray();
            });

    private static WireErrorKind Refused(Action decode) => Assert.Throws<WireFormatException>(decode).Kind;

    private static byte[] Hex(string hex) => Convert.FromHexString(hex);

    [Theory]
    [InlineData("00", 0UL)]
    [InlineData("7f", 127UL)]
    [InlineData("cc80", 128UL)]
    [InlineData("cd0100", 256UL)]
    [InlineData("ce00010000", 65536UL)]
    [InlineData("cf0000000100000000", 4294967296UL)]
    [InlineData("cfffffffffffffffff", ulong.MaxValue)]
    public void ShortestIntegerFormsAreRead(string hex, ulong expected)
    {
        Assert.Equal(expected, DecodeUnsigned(Hex(hex)));
    }

    [Theory]
    [InlineData("cc05")]
    [InlineData("cc7f")]
    [InlineData("cd0005")]
    [InlineData("cd00ff")]
    [InlineData("ce00000005")]
    [InlineData("ce0000ffff")]
    [InlineData("cf0000000000000005")]
    [InlineData("cf00000000ffffffff")]
    [InlineData("d005")]
    [InlineData("d10005")]
    [InlineData("d200000005")]
    [InlineData("d30000000000000005")]
    public void IntegerInALongerOrSignedFormIsNonCanonical(string hex)
    {
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => DecodeUnsigned(Hex(hex))));
    }

    [Theory]
    [InlineData("ff")]
    [InlineData("e0")]
    [InlineData("d0ff")]
    [InlineData("d3ffffffffffffffff")]
    public void NegativeIntegerIsMalformed(string hex)
    {
        Assert.Equal(WireErrorKind.Malformed, Refused(() => DecodeUnsigned(Hex(hex))));
    }

    [Theory]
    [InlineData("c0")]
    [InlineData("c2")]
    [InlineData("c3")]
    [InlineData("a131")]
    [InlineData("c40101")]
    [InlineData("90")]
    [InlineData("80")]
    [InlineData("ca3f800000")]
    [InlineData("cb3ff0000000000000")]
    [InlineData("d40001")]
    [InlineData("c1")]
    public void IntegerOfAnotherTypeIsMalformed(string hex)
    {
        Assert.Equal(WireErrorKind.Malformed, Refused(() => DecodeUnsigned(Hex(hex))));
    }

    [Theory]
    [InlineData("")]
    [InlineData("cc")]
    [InlineData("cd00")]
    [InlineData("ce000000")]
    [InlineData("cf00000000000000")]
    public void IntegerCutShortIsTruncated(string hex)
    {
        Assert.Equal(WireErrorKind.Truncated, Refused(() => DecodeUnsigned(Hex(hex))));
    }

    [Fact]
    public void VersionOtherThanTheExpectedOneIsUnsupported()
    {
        Assert.Equal(5UL, DecodeVersioned(Hex("920105")));
        Assert.Equal(WireErrorKind.UnsupportedVersion, Refused(() => DecodeVersioned(Hex("920205"))));
        Assert.Equal(WireErrorKind.UnsupportedVersion, Refused(() => DecodeVersioned(Hex("920005"))));
        Assert.Equal(WireErrorKind.UnsupportedVersion, Refused(() => DecodeVersioned(Hex("92cdffff05"))));
    }

    [Fact]
    public void VersionWrittenInALongerFormIsNonCanonical()
    {
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => DecodeVersioned(Hex("92cc0105"))));
    }

    [Fact]
    public void ArrayWithTooFewElementsIsMalformedAndWithTooManyTooLarge()
    {
        Assert.Equal(WireErrorKind.Malformed, Refused(() => DecodeVersioned(Hex("9101"))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => DecodeVersioned(Hex("93010505"))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => DecodeVersioned(Hex("820105"))));
    }

    [Fact]
    public void ArrayHeaderInALongerFormIsNonCanonical()
    {
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => DecodeVersioned(Hex("dc00020105"))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => DecodeVersioned(Hex("dd000000020105"))));
    }

    [Fact]
    public void ArrayHeaderClaimingMoreElementsThanBytesIsRefusedWithoutAllocating()
    {
        var kind = Refused(() => DecodeVersioned(Hex("ddffffffff0105")));

        Assert.True(kind is WireErrorKind.Truncated or WireErrorKind.TooLarge, kind.ToString());
    }

    [Fact]
    public void EveryTruncationOfAStructureIsTruncated()
    {
        var encoded = Hex("9201cd1234");

        Assert.Equal(0x1234UL, DecodeVersioned(encoded));
        for (var length = 0; length < encoded.Length; length++)
        {
            Assert.Equal(WireErrorKind.Truncated, Refused(() => DecodeVersioned(encoded[..length])));
        }
    }

    [Fact]
    public void BytesAfterTheStructureAreTrailingBytes()
    {
        Assert.Equal(WireErrorKind.TrailingBytes, Refused(() => DecodeVersioned(Hex("920105c0"))));
        Assert.Equal(WireErrorKind.TrailingBytes, Refused(() => DecodeVersioned(Hex("92010500"))));
        Assert.Equal(WireErrorKind.TrailingBytes, Refused(() => DecodeUnsigned(Hex("0505"))));
    }

    [Fact]
    public void InputOverTheLimitIsTooLargeBeforeAnyByteIsRead()
    {
        var tooLong = new byte[Limit + 1];

        Assert.Equal(WireErrorKind.TooLarge, Refused(() => DecodeUnsigned(tooLong)));
        Assert.Equal(WireErrorKind.TrailingBytes, Refused(() => DecodeUnsigned(new byte[Limit])));
    }

    [Fact]
    public void ByteStringsAreCheckedForLengthAndType()
    {
        Assert.Equal([1, 2, 3], DecodeBytes(Hex("c403010203"), 3, 3));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => DecodeBytes(Hex("c4020102"), 3, 3)));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => DecodeBytes(Hex("c40401020304"), 3, 3)));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => DecodeBytes(Hex("c0"), 0, 3)));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => DecodeBytes(Hex("03"), 0, 3)));
        Assert.Equal(WireErrorKind.Truncated, Refused(() => DecodeBytes(Hex("c4030102"), 3, 3)));
        Assert.Equal(WireErrorKind.Truncated, Refused(() => DecodeBytes(Hex("c67fffffff01"), 0, 3)));
    }

    [Theory]
    [InlineData("c680000000")]
    [InlineData("c6ffffffff01")]
    public void ByteStringClaimingTwoGigabytesOrMoreIsATypedError(string hex)
    {
        // A bin32 length of 2^31 or more must be refused like any other length past the end of the input.
        Assert.Equal(WireErrorKind.Truncated, Refused(() => DecodeBytes(Hex(hex), 0, 3)));
        Assert.Equal(WireErrorKind.Truncated, Refused(() => CanonicalEncoding.Decode(Hex(hex), "raw", Limit, static (ref CanonicalReader r) => r.ReadRawValue("v"), static v => v)));
        Assert.Equal(WireErrorKind.Truncated, Refused(() => CanonicalEncoding.Decode(Hex(hex), "optional", Limit, static (ref CanonicalReader r) => r.ReadBytesOrNil("b", 3), static _ => [])));
    }

    [Theory]
    [InlineData("db80000000")]
    [InlineData("dbffffffff61")]
    public void TextClaimingTwoGigabytesOrMoreIsATypedError(string hex)
    {
        Assert.Equal(WireErrorKind.Truncated, Refused(() => DecodeText(Hex(hex))));
    }

    [Fact]
    public void ByteStringInALongerHeaderIsNonCanonical()
    {
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => DecodeBytes(Hex("c50003010203"), 3, 3)));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => DecodeBytes(Hex("c600000003010203"), 3, 3)));
    }

    [Fact]
    public void TextWhereBytesAreExpectedIsNotAccepted()
    {
        var kind = Refused(() => DecodeBytes(Hex("a3010203"), 3, 3));

        Assert.True(kind is WireErrorKind.Malformed or WireErrorKind.NonCanonical, kind.ToString());
    }

    [Fact]
    public void TextIsStrictUtf8WithinItsLimit()
    {
        Assert.Equal("é", DecodeText(Hex("a2c3a9")));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => DecodeText(Hex("a2c328"))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => DecodeText(Hex("a2c0af"))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => DecodeText(Hex("a3eda080"))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => DecodeText(Hex("a1ff"))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => DecodeText(Hex("c0"))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => DecodeText(Hex("a3616263"), maxBytes: 2)));
        Assert.Equal(WireErrorKind.Truncated, Refused(() => DecodeText(Hex("a36162"))));
    }

    [Fact]
    public void TextInALongerHeaderIsNonCanonical()
    {
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => DecodeText(Hex("d903616263"))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => DecodeText(Hex("da0003616263"))));
    }

    [Fact]
    public void OptionalValuesAreNilOrTheirExactShape()
    {
        static (byte[]? Bytes, int? Count) Read(byte[] input) =>
            CanonicalEncoding.Decode(
                input,
                "optional",
                Limit,
                static (ref CanonicalReader r) => (r.ReadBytesOrNil("b", 2), r.ReadArrayOrNil("a", 0)),
                static v =>
                {
                    var w = new CanonicalWriter();
                    if (v.Item1 is null)
                    {
                        w.WriteNil();
                    }
                    else
                    {
                        w.WriteBytes(v.Item1);
                    }

                    if (v.Item2 is null)
                    {
                        w.WriteNil();
                    }
                    else
                    {
                        w.WriteArray(0);
                    }

                    return w.ToArray();
                });

        Assert.Equal((null, null), Read(Hex("c0c0")));
        Assert.Equal(new byte[] { 1, 2 }, Read(Hex("c402010290")).Bytes);
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Read(Hex("c40101c0"))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => Read(Hex("c09101"))));
        Assert.Equal(WireErrorKind.Truncated, Refused(() => Read(Hex("c0"))));
    }

    [Fact]
    public void MapCountIsLimited()
    {
        static int Read(byte[] input) =>
            CanonicalEncoding.Decode(
                input,
                "map",
                Limit,
                static (ref CanonicalReader r) =>
                {
                    var count = r.ReadMap("m", 1);
                    for (var i = 0; i < count; i++)
                    {
                        r.ReadText("k", 8);
                        r.ReadUnsigned("v");
                    }

                    return count;
                },
                static count =>
                {
                    var w = new CanonicalWriter();
                    w.WriteMap(count);
                    for (var i = 0; i < count; i++)
                    {
                        w.WriteText("a");
                        w.WriteUnsigned(0);
                    }

                    return w.ToArray();
                });

        Assert.Equal(1, Read(Hex("81a16100")));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => Read(Hex("82a16100a16100"))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Read(Hex("de0001a16100"))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Read(Hex("91a16100"))));
    }

    [Fact]
    public void RawValueIsReadWhole()
    {
        var raw = CanonicalEncoding.Decode(
            Hex("9201a161"),
            "raw",
            Limit,
            static (ref CanonicalReader r) => r.ReadRawValue("v"),
            static v => v);

        Assert.Equal(Hex("9201a161"), raw);
        Assert.Equal(WireErrorKind.Truncated, Refused(() => CanonicalEncoding.Decode(Hex("9201a1"), "raw", Limit, static (ref CanonicalReader r) => r.ReadRawValue("v"), static v => v)));
    }

    [Fact]
    public void ErrorsNameTheStructureAndTheField()
    {
        var error = Assert.Throws<WireFormatException>(() => DecodeVersioned(Hex("9201c0")));

        Assert.Equal(WireErrorKind.Malformed, error.Kind);
        Assert.Contains("pair", error.Message, StringComparison.Ordinal);
        Assert.Contains("n", error.Message, StringComparison.Ordinal);
        Assert.IsType<MessagePackSerializationException>(error.InnerException);
    }

    [Fact]
    public void DecodeRefusesMissingDelegates()
    {
        Assert.Throws<ArgumentNullException>(() => CanonicalEncoding.Decode<int>(Hex("00"), "x", 1, null!, static _ => []));
        Assert.Throws<ArgumentNullException>(() => CanonicalEncoding.Decode(Hex("00"), "x", 1, static (ref CanonicalReader r) => 0, null!));
    }
}
