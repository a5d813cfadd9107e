using SecureChannels.Protocol.Circuits;

namespace SecureChannels.Protocol.Tests.Circuits;

public sealed class RelayFramesTests
{
    private const string Identifier = "I0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Fact]
    public void EveryFrameRoundTrips()
    {
        var hello = new HelloFrame(true, ["alpha", "b-2.c"], null);
        var decodedHello = RelayFrames.DecodeHello(RelayFrames.Hello(hello));
        Assert.True(decodedHello.Listen);
        Assert.Equal(hello.Names, decodedHello.Names);
        Assert.Null(decodedHello.Relay);
        Assert.Equal("peer-relay", RelayFrames.DecodeHello(RelayFrames.Hello(new HelloFrame(false, [], "peer-relay"))).Relay);

        var welcome = new WelcomeFrame("relay-one", [Identifier, "alpha"], 1 << 20, 65536);
        var decodedWelcome = RelayFrames.DecodeWelcome(RelayFrames.Welcome(welcome));
        Assert.Equal((welcome.Relay, welcome.MaxWindow, welcome.MaxData), (decodedWelcome.Relay, decodedWelcome.MaxWindow, decodedWelcome.MaxData));
        Assert.Equal(welcome.Addresses, decodedWelcome.Addresses);

        Assert.Equal(new ReasonFrame(RelayErrorCode.Superseded, "newer hop"), RelayFrames.DecodeGoAway(RelayFrames.GoAway(RelayErrorCode.Superseded, "newer hop")));
        Assert.Equal(0x0102030405060708UL, RelayFrames.DecodePing(RelayFrames.Ping(RelayFrameType.Ping, 0x0102030405060708UL)));

        var open = new OpenFrame("alpha@relay-two", 262144, Identifier, "user:alice", ["relay-one"]);
        var openFrame = RelayFrames.Open(uint.MaxValue, open);
        Assert.Equal(uint.MaxValue, RelayFrames.ReadCircuit(openFrame));
        var decodedOpen = RelayFrames.DecodeOpen(openFrame);
        Assert.Equal((open.Address, open.Window, open.Opener, open.Principal), (decodedOpen.Address, decodedOpen.Window, decodedOpen.Opener, decodedOpen.Principal));
        Assert.Equal(open.Via, decodedOpen.Via);

        var accept = RelayFrames.WindowFrame(RelayFrameType.Accept, 7, 1234);
        Assert.Equal((RelayFrameType.Accept, 7u, 1234u), (RelayFrames.ReadType(accept), RelayFrames.ReadCircuit(accept), RelayFrames.DecodeWindow(accept)));
        var reset = RelayFrames.CircuitReason(RelayFrameType.Reset, 9, RelayErrorCode.FlowControlViolation, "too much");
        Assert.Equal(new ReasonFrame(RelayErrorCode.FlowControlViolation, "too much"), RelayFrames.DecodeCircuitReason(reset, RelayFrameType.Reset));
        var close = RelayFrames.Close(11);
        RelayFrames.CheckClose(close);
        Assert.Equal(11u, RelayFrames.ReadCircuit(close));

        var data = RelaySide.Data(5, [1, 2, 3]);
        Assert.Equal(RelayFrameType.Data, RelayFrames.ReadType(data));
        Assert.Equal(5u, RelayFrames.ReadCircuit(data));
        RelayFrames.RewriteCircuit(data, 6);
        Assert.Equal(6u, RelayFrames.ReadCircuit(data));
    }

    public static TheoryData<string, byte[]> Malformed => new()
    {
        { "empty", [] },
        { "unknown type", [0x7f] },
        { "circuit header cut", [0x13, 0, 0, 1] },
        { "circuit id 0", [0x15, 0, 0, 0, 0] },
        { "HELLO truncated", [0x01, 0x94, 0x01, 0x01] },
        { "HELLO trailing byte", [0x01, 0x94, 0x01, 0x00, 0x90, 0xc0, 0x00] },
        { "HELLO non-canonical version", [0x01, 0x94, 0xcc, 0x01, 0x00, 0x90, 0xc0] },
        { "HELLO listen 2", [0x01, 0x94, 0x01, 0x02, 0x90, 0xc0] },
        { "HELLO wrong version", [0x01, 0x94, 0x02, 0x00, 0x90, 0xc0] },
        { "PING nonce short", [0x04, 1, 2, 3] },
        { "CREDIT zero", [0x14, 0, 0, 0, 1, 0, 0, 0, 0] },
        { "ACCEPT long", [0x11, 0, 0, 0, 1, 0, 0, 0, 1, 0] },
        { "CLOSE with body", [0x15, 0, 0, 0, 1, 0] },
        { "GOAWAY code above u16", [0x03, 0x92, 0xce, 0x00, 0x01, 0x00, 0x00, 0xa0] },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedFramesAreProtocolViolations(string why, byte[] frame)
    {
        var error = Assert.Throws<RelayException>(() => DecodeAny(frame));
        Assert.Equal(RelayErrorCode.ProtocolViolation, error.Code);
        Assert.False(error.FromPeer, why);
    }

    [Fact]
    public void OversizedTextsAreRejected()
    {
        // A name of 64 characters in HELLO, and a reason of 201 bytes in GOAWAY (writers cut, readers reject).
        var longName = RelayFrames.Hello(new HelloFrame(true, [new string('a', 64)], null));
        Assert.Equal(RelayErrorCode.ProtocolViolation, Assert.Throws<RelayException>(() => RelayFrames.DecodeHello(longName)).Code);

        byte[] longReason = [0x03, 0x92, 0x00, 0xd9, 201, .. Enumerable.Repeat((byte)'r', 201)];
        Assert.Equal(RelayErrorCode.ProtocolViolation, Assert.Throws<RelayException>(() => RelayFrames.DecodeGoAway(longReason)).Code);

        var cut = RelayFrames.DecodeGoAway(RelayFrames.GoAway(RelayErrorCode.Normal, new string('é', 150)));
        Assert.Equal(100, cut.Reason.Length);
        var names = Enumerable.Range(0, RelayLimits.MaxNamesInHello + 1).Select(i => $"n{i}").ToArray();
        Assert.Equal(RelayErrorCode.ProtocolViolation, Assert.Throws<RelayException>(() => RelayFrames.DecodeHello(RelayFrames.Hello(new HelloFrame(true, names, null)))).Code);
    }

    [Fact]
    public void UnknownReasonCodesReadAsInternalError()
    {
        byte[] frame = [0x16, 0, 0, 0, 3, 0x92, 0xcd, 0x03, 0xe7, 0xa1, (byte)'x'];
        Assert.Equal(new ReasonFrame(RelayErrorCode.InternalError, "x"), RelayFrames.DecodeCircuitReason(frame, RelayFrameType.Reset));
    }

    [Fact]
    public void DecodingTheWrongTypeIsAViolation()
    {
        var welcome = RelayFrames.Welcome(RelayLinkHarness.DefaultWelcome);
        Assert.Equal(RelayErrorCode.ProtocolViolation, Assert.Throws<RelayException>(() => RelayFrames.DecodeHello(welcome)).Code);
    }

    [Theory]
    [InlineData("service-a", "service-a", null)]
    [InlineData("a", "a", null)]
    [InlineData("9.x-y@relay-two", "9.x-y", "relay-two")]
    [InlineData(Identifier, Identifier, null)]
    [InlineData(Identifier + "@r", Identifier, "r")]
    public void AddressesParse(string text, string target, string? relay)
    {
        var address = RelayAddress.Parse(text);
        Assert.Equal((target, relay), (address.Target, address.Relay));
        Assert.Equal(text, address.ToString());
        Assert.Equal(target.StartsWith('I'), address.IsIdentifier);
        Assert.Equal(target, address.WithoutRelay().ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("Upper")]
    [InlineData("-dash")]
    [InlineData(".dot")]
    [InlineData("a@")]
    [InlineData("@r")]
    [InlineData("a@b@c")]
    [InlineData("under_score")]
    [InlineData("sp ace")]
    [InlineData("I0123")]
    public void NonAddressesAreRejected(string text)
    {
        Assert.False(RelayAddress.TryParse(text, out _));
        Assert.Throws<FormatException>(() => RelayAddress.Parse(text));
    }

    [Fact]
    public void NameLengthsAreBounded()
    {
        Assert.True(RelayAddress.IsValidName(new string('a', 63)));
        Assert.False(RelayAddress.IsValidName(new string('a', 64)));
        Assert.False(RelayAddress.TryParse(new string('a', 63) + "@" + new string('b', 64), out _));
        Assert.False(RelayAddress.TryParse(null, out _));
    }

    private static void DecodeAny(byte[] frame)
    {
        var type = RelayFrames.ReadType(frame);
        if (RelayFrames.IsCircuitFrame(type))
        {
            RelayFrames.ReadCircuit(frame);
        }

        switch (type)
        {
            case RelayFrameType.Hello: RelayFrames.DecodeHello(frame); break;
            case RelayFrameType.Welcome: RelayFrames.DecodeWelcome(frame); break;
            case RelayFrameType.GoAway: RelayFrames.DecodeGoAway(frame); break;
            case RelayFrameType.Ping or RelayFrameType.Pong: RelayFrames.DecodePing(frame); break;
            case RelayFrameType.Open: RelayFrames.DecodeOpen(frame); break;
            case RelayFrameType.Accept or RelayFrameType.Credit: RelayFrames.DecodeWindow(frame); break;
            case RelayFrameType.Close: RelayFrames.CheckClose(frame); break;
            case RelayFrameType.Refuse or RelayFrameType.Reset: RelayFrames.DecodeCircuitReason(frame, type); break;
        }
    }
}
