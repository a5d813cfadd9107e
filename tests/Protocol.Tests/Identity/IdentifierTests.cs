using SecureChannels.Protocol.Identity;
using static SecureChannels.Protocol.Tests.Identity.IdentityTestKit;

namespace SecureChannels.Protocol.Tests.Identity;

/// <summary>The identifier's text form ("I" + 64 lowercase hex digits), bytes and equality.</summary>
public sealed class IdentifierTests
{
    private static readonly byte[] SampleBytes = [.. Enumerable.Range(0xa0, Identifier.Length).Select(i => (byte)i)];

    [Fact]
    public void TextIsCapitalIFollowedBySixtyFourLowercaseHexDigits()
    {
        var identifier = Identifier.FromBytes(SampleBytes);

        var text = identifier.ToString();

        Assert.Equal("I" + Convert.ToHexStringLower(SampleBytes), text);
        Assert.Equal(65, text.Length);
    }

    [Fact]
    public async Task TextRoundTripsThroughParseAndTryParse()
    {
        var identity = await NewIdentityAsync(NewClock());
        var text = identity.Identifier.ToString();

        Assert.Equal(identity.Identifier, Identifier.Parse(text));
        Assert.True(Identifier.TryParse(text, out var parsed));
        Assert.Equal(identity.Identifier, parsed);
        Assert.Equal(text, parsed.ToString());
        Assert.Equal(identity.Identifier.GetHashCode(), parsed.GetHashCode());
    }

    [Theory]
    [InlineData("")]
    [InlineData("I")]
    [InlineData("a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf")]
    [InlineData("Ja0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf")]
    [InlineData("ia0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf")]
    [InlineData("Ia0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbeb")]
    [InlineData("Ia0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf0")]
    [InlineData("Ia0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebg")]
    [InlineData("Ia0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbe f")]
    [InlineData(" Ia0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf")]
    [InlineData("Ia0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ")]
    [InlineData("I-0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf")]
    public void MalformedTextIsRefused(string text)
    {
        Assert.False(Identifier.TryParse(text, out var parsed));
        Assert.Equal(default, parsed);
        Assert.Throws<FormatException>(() => Identifier.Parse(text));
    }

    [Fact]
    public void NullTextIsRefused()
    {
        Assert.False(Identifier.TryParse(null, out _));
    }

    [Fact]
    public void UppercaseHexIsRefusedBecauseTheTextFormIsLowercase()
    {
        // docs/protocol.md §5: identifier text is "I" + 64 *lowercase* hex digits; one identifier, one text.
        var upper = "I" + Convert.ToHexString(SampleBytes);

        Assert.False(Identifier.TryParse(upper, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(31)]
    [InlineData(33)]
    public void FromBytesRefusesAnythingButThirtyTwoBytes(int length)
    {
        Assert.Throws<ArgumentException>(() => Identifier.FromBytes(new byte[length]));
    }

    [Fact]
    public void IdentifiersAreEqualExactlyWhenTheirBytesAre()
    {
        var one = Identifier.FromBytes(SampleBytes);
        var same = Identifier.FromBytes(SampleBytes.ToArray());
        var other = Identifier.FromBytes(FlipBit(SampleBytes, 31));

        Assert.True(one == same);
        Assert.False(one != same);
        Assert.True(one.Equals((object)same));
        Assert.True(one != other);
        Assert.False(one.Equals(other));
        Assert.False(one.Equals("not an identifier"));
    }

    [Fact]
    public void FromBytesCopiesItsInput()
    {
        var bytes = SampleBytes.ToArray();
        var identifier = Identifier.FromBytes(bytes);

        bytes[0] ^= 0xff;

        Assert.Equal(SampleBytes, identifier.Bytes.ToArray());
    }

    [Fact]
    public void DefaultIdentifierIsEmptyAndEqualOnlyToDefault()
    {
        var empty = default(Identifier);

        Assert.Equal(string.Empty, empty.ToString());
        Assert.Equal(0, empty.Bytes.Length);
        Assert.Equal(default, empty);
        Assert.NotEqual(Identifier.FromBytes(SampleBytes), empty);
    }
}
