using System.IO.Pipelines;
using System.Security.Cryptography;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Noise;
using SecureChannels.Testing;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>
/// A man in the middle alters, drops, duplicates, reorders, replays, truncates or oversizes frames. In transport
/// every such frame fails to decrypt: the receiver delivers what came before, then ends with ProtocolError and
/// tells the sender. In the handshake the open fails.
/// </summary>
public sealed class SecureChannelTamperingTests
{
    // Frames from the initiator: 0 is handshake message 1, 1 is message 3, then one frame per small message.
    private const int FirstRecord = 2;

    public static TheoryData<string> TransportTampering => new()
    {
        "flip-ciphertext",
        "flip-tag",
        "flip-length",
        "drop",
        "duplicate",
        "swap",
        "replay-earlier",
        "truncate-one-byte",
        "truncate-below-a-record",
        "empty-frame",
        "oversized-garbage-frame",
    };

    [Theory]
    [MemberData(nameof(TransportTampering))]
    public async Task ATamperedFrameEndsTheChannelWithProtocolErrorAfterTheEarlierMessages(string tampering)
    {
        const int Target = FirstRecord + 2;
        var (tamper, delivered) = tampering switch
        {
            "flip-ciphertext" => (new FaultPlan().Corrupt(Target, 0), 2),
            "flip-tag" => (new FaultPlan().Corrupt(Target, -1), 2),
            "flip-length" => (FlipLengthKeepingSize(Target), 2),
            "drop" => (new FaultPlan().Drop(Target), 2),
            "duplicate" => (new FaultPlan().Duplicate(Target), 3),
            "swap" => (new FaultPlan().Reorder(Target), 2),
            "replay-earlier" => (new FaultPlan().Replay(FirstRecord, Target), 3),
            "truncate-one-byte" => (new FaultPlan().Truncate(Target, 1), 2),
            "truncate-below-a-record" => (new FaultPlan().Replace(Target, new byte[NoiseConstants.TagLength]), 2),
            "empty-frame" => (new FaultPlan().Replace(Target, []), 2),
            "oversized-garbage-frame" => (new FaultPlan().Replace(Target, RandomNumberGenerator.GetBytes(ushort.MaxValue)), 2),
            _ => throw new ArgumentOutOfRangeException(nameof(tampering)),
        };

        await AssertTamperingEndsChannel(tamper, [10, 20, 30, 40, 50], delivered);
    }

    [Fact]
    public async Task ATamperedMiddleFragmentLosesThatWholeMessage()
    {
        // Messages: 10 bytes (frame 2), 150 000 bytes (frames 3, 4, 5), 10 bytes (frame 6). The middle fragment is altered.
        await AssertTamperingEndsChannel(new FaultPlan().Corrupt(FirstRecord + 2, 100), [10, 150_000, 10], delivered: 1);
    }

    [Fact]
    public async Task TamperingTowardsTheInitiatorEndsItsSideWithProtocolError()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);

        // Frames from the responder: 0 is handshake message 2, 1 is ACCEPT, then its records.
        var sent = new TaskCompletionSource();
        var mitm = new FaultyConnection(toInitiator: new FaultPlan().Delay(2, sent.Task).Corrupt(3, 5));
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob), mitm.Ends);
        await using (a)
        await using (b)
        {
            await b.SendAsync("one"u8.ToArray());
            await b.SendAsync("two"u8.ToArray());
            await b.SendAsync("three"u8.ToArray());
            sent.SetResult();

            using (var one = await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))
            {
                Assert.Equal("one"u8.ToArray(), one!.Payload.ToArray());
            }

            var local = await Assert.ThrowsAsync<SecureChannelException>(async () => await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(ChannelErrorCode.ProtocolError, local.Code);
            Assert.False(local.FromPeer);
            var remote = await Assert.ThrowsAsync<SecureChannelException>(async () => await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(ChannelErrorCode.ProtocolError, remote.Code);
            Assert.True(remote.FromPeer);
        }
    }

    public static TheoryData<string, bool, int, string, bool> HandshakeTampering => new()
    {
        // name, towards the responder?, frame, what, and whether the initiator is the side that detects it.
        { "message 1: ephemeral key altered (detected in message 2)", true, 0, "flip", true },
        { "message 1: truncated", true, 0, "truncate", false },
        { "message 1: payload altered", true, 0, "flip-end", false },
        { "message 2: altered", false, 0, "flip", true },
        { "message 2: payload altered", false, 0, "flip-end", true },
        { "message 2: truncated", false, 0, "truncate", true },
        { "message 3: altered", true, 1, "flip", false },
        { "message 3: payload altered", true, 1, "flip-end", false },
        { "message 3: truncated", true, 1, "truncate", false },
        { "ACCEPT: altered", false, 1, "flip", true },
        { "ACCEPT: truncated", false, 1, "truncate", true },
    };

    [Theory]
    [MemberData(nameof(HandshakeTampering))]
    public async Task TamperingWithTheHandshakeFailsTheOpen(string name, bool towardsResponder, int frame, string what, bool initiatorDetects)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var tamper = what switch
        {
            "flip" => new FaultPlan().Corrupt(frame, 0),
            "flip-end" => new FaultPlan().Corrupt(frame, -1),
            _ => new FaultPlan().Truncate(frame, 1),
        };
        var mitm = towardsResponder ? new FaultyConnection(toResponder: tamper) : new FaultyConnection(toInitiator: tamper);

        var accept = SecureChannel.AcceptAsync(mitm.Responder, kit.Options(bob));
        var connect = SecureChannel.ConnectAsync(mitm.Initiator, kit.Options(alice));

        // No time passes: nothing here may depend on the handshake timeout.
        var (detector, other) = initiatorDetects ? (connect, accept) : (accept, connect);
        var failure = await Record.ExceptionAsync(() => detector.WaitAsync(ChannelTestKit.Guard));
        var detected = Assert.IsType<SecureChannelException>(failure);
        Assert.True(detected.Code == ChannelErrorCode.ProtocolError && !detected.FromPeer, $"{name}: {detected.Code} (from peer: {detected.FromPeer}): {detected.Message}");

        if (frame == 1 && !towardsResponder)
        {
            // The responder had already accepted; only the initiator saw the altered ACCEPT.
            await using var opened = await other.WaitAsync(ChannelTestKit.Guard);
            return;
        }

        // The detecting side answers with an abort frame, so the other side fails at once with the code.
        var otherFailure = await Record.ExceptionAsync(() => other.WaitAsync(ChannelTestKit.Guard));
        var told = Assert.IsType<SecureChannelException>(otherFailure);
        Assert.True(told.Code == ChannelErrorCode.ProtocolError && told.FromPeer, $"{name}: the other side ended with {told.Code} (from peer: {told.FromPeer}): {told.Message}");
    }

    [Fact]
    public async Task AFrameTooShortForARecordInPlaceOfAcceptFailsTheOpenWithProtocolError()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var mitm = new FaultyConnection(toInitiator: new FaultPlan().Replace(1, new byte[5]));

        var accept = SecureChannel.AcceptAsync(mitm.Responder, kit.Options(bob));
        var connect = SecureChannel.ConnectAsync(mitm.Initiator, kit.Options(alice));
        await using var responder = await accept.WaitAsync(ChannelTestKit.Guard);

        // Expected: the documented SecureChannelException(ProtocolError), not a NoiseException escaping the open.
        var failure = await Record.ExceptionAsync(() => connect.WaitAsync(ChannelTestKit.Guard));
        var channelFailure = Assert.IsType<SecureChannelException>(failure);
        Assert.Equal(ChannelErrorCode.ProtocolError, channelFailure.Code);
    }

    public static TheoryData<string> MalformedRecords => new()
    {
        "unknown type 0x08",
        "type 0x00",
        "empty plaintext",
        "second ACCEPT",
        "KEEPALIVE with a body",
        "REKEY with a body",
        "CLOSE with a 1-byte body",
        "CLOSE with a 3-byte body",
    };

    [Theory]
    [MemberData(nameof(MalformedRecords))]
    public async Task AWellEncryptedButMalformedRecordEndsTheChannelWithProtocolError(string record)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (initiatorEnd, responderEnd) = ChannelTestKit.CreateConnection();
        var rogueOpen = RoguePeer.RespondAsync(responderEnd, kit.Options(bob));
        var connect = SecureChannel.ConnectAsync(initiatorEnd, kit.Options(alice));
        using var rogue = await rogueOpen.WaitAsync(ChannelTestKit.Guard);
        await rogue.SendRecordAsync((byte)RecordType.Accept, default);
        await using var a = await connect.WaitAsync(ChannelTestKit.Guard);

        await rogue.SendRecordAsync((byte)RecordType.DataLast, "before"u8.ToArray());
        switch (record)
        {
            case "unknown type 0x08":
                await rogue.SendRecordAsync(0x08, default);
                break;
            case "type 0x00":
                await rogue.SendRecordAsync(0x00, "x"u8.ToArray());
                break;
            case "empty plaintext":
                await rogue.SendEmptyMessageAsync();
                break;
            case "second ACCEPT":
                await rogue.SendRecordAsync((byte)RecordType.Accept, default);
                break;
            case "KEEPALIVE with a body":
                await rogue.SendRecordAsync((byte)RecordType.Keepalive, "hidden"u8.ToArray());
                break;
            case "REKEY with a body":
                await rogue.SendRecordAsync((byte)RecordType.Rekey, new byte[] { 1 });
                break;
            case "CLOSE with a 1-byte body":
                await rogue.SendRecordAsync((byte)RecordType.Close, new byte[] { 0 });
                break;
            default:
                await rogue.SendRecordAsync((byte)RecordType.Close, new byte[] { 0, 0, 0 });
                break;
        }

        await rogue.SendRecordAsync((byte)RecordType.DataLast, "after"u8.ToArray());

        using (var before = await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))
        {
            Assert.Equal("before"u8.ToArray(), before!.Payload.ToArray());
        }

        var failure = await Record.ExceptionAsync(async () =>
        {
            using var unexpected = await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            Assert.Fail($"After {record}, the channel delivered '{System.Text.Encoding.UTF8.GetString(unexpected!.Payload.Span)}' instead of ending with ProtocolError.");
        });
        var channelFailure = Assert.IsType<SecureChannelException>(failure);
        Assert.Equal(ChannelErrorCode.ProtocolError, channelFailure.Code);
        Assert.False(channelFailure.FromPeer);
    }

    [Fact]
    public async Task AnAcceptRecordWithABodyIsRefused()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (initiatorEnd, responderEnd) = ChannelTestKit.CreateConnection();
        var rogueOpen = RoguePeer.RespondAsync(responderEnd, kit.Options(bob));
        var connect = SecureChannel.ConnectAsync(initiatorEnd, kit.Options(alice));
        using var rogue = await rogueOpen.WaitAsync(ChannelTestKit.Guard);

        // docs/protocol.md §8.3: ACCEPT has an empty body; a wrong body length is a ProtocolError.
        await rogue.SendRecordAsync((byte)RecordType.Accept, "smuggled"u8.ToArray());

        var failure = await Record.ExceptionAsync(async () => await (await connect.WaitAsync(ChannelTestKit.Guard)).DisposeAsync());
        var channelFailure = Assert.IsType<SecureChannelException>(failure);
        Assert.Equal(ChannelErrorCode.ProtocolError, channelFailure.Code);
    }

    private static async Task AssertTamperingEndsChannel(FaultPlan tamper, int[] sizes, int delivered)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);

        // The relay holds alice's records until she has sent them all, so her sends never race bob's failure.
        var sent = new TaskCompletionSource();
        var mitm = new FaultyConnection(
            toResponder: tamper.Delay(FirstRecord, sent.Task),
            initiatorOutput: new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0));
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob), mitm.Ends);
        await using (a)
        await using (b)
        {
            for (var i = 0; i < sizes.Length; i++)
            {
                await a.SendAsync(ChannelTestKit.Pattern(sizes[i], i)).AsTask().WaitAsync(ChannelTestKit.Guard);
            }

            sent.SetResult();
            for (var i = 0; i < delivered; i++)
            {
                using var message = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
                Assert.NotNull(message);
                Assert.True(message.Payload.Span.SequenceEqual(ChannelTestKit.Pattern(sizes[i], i)), $"Message {i} arrived altered.");
            }

            var failure = await Record.ExceptionAsync(async () =>
            {
                using var extra = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
                Assert.Fail($"A message of {extra?.Payload.Length} bytes was delivered after {delivered}.");
            });
            var local = Assert.IsType<SecureChannelException>(failure);
            Assert.Equal(ChannelErrorCode.ProtocolError, local.Code);
            Assert.False(local.FromPeer);
            Assert.Equal(ChannelErrorCode.ProtocolError, (await b.Completion).Code);

            var remote = await a.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.ProtocolError, remote.Code);
            Assert.True(remote.FromPeer);
        }
    }

    // Grows the frame's body by one byte and says so in the length: the record no longer authenticates.
    private static FaultPlan FlipLengthKeepingSize(int index) =>
        new FaultPlan().Replace(index, frame => FaultPlan.Frame([.. frame.AsSpan(2), 0]));
}
