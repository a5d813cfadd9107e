using System.Buffers;
using System.IO.Pipelines;
using SecureChannels.Protocol.Channel;
using SecureChannels.Testing;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>Messages from 0 bytes to the limit, both ways, over an in-memory pipe and over loopback TCP.</summary>
public sealed class SecureChannelTransportTests
{
    private const int Limit = 1024 * 1024;

    // Around the fragment size (65518), exactly two fragments, odd sizes, and the limit itself.
    private static readonly int[] Sizes = [0, 1, 2, 65517, 65518, 65519, 65536, 2 * 65518, (2 * 65518) + 1, 300_001, Limit - 1, Limit];

    public enum Transport
    {
        Memory,
        Tcp,
    }

    [Theory]
    [InlineData(Transport.Memory)]
    [InlineData(Transport.Tcp)]
    public async Task MessagesFromZeroBytesToTheLimitArriveWholeAndInOrderBothWays(Transport transport)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var settings = new ChannelTestKit.ChannelSettings { MaxMessageSize = Limit };
        await using var tcp = transport == Transport.Tcp ? await LoopbackTcp.ConnectAsync() : null;
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice, settings: settings), kit.Options(bob, settings: settings), tcp?.Ends);
        await using (a)
        await using (b)
        {
            // Both directions at once: each side sends everything while the other receives.
            var aToB = Exchange(a, b, seed: 1);
            var bToA = Exchange(b, a, seed: 2);
            await Task.WhenAll(aToB, bToA).WaitAsync(ChannelTestKit.Guard);

            await a.CloseAsync().WaitAsync(ChannelTestKit.Guard);
            Assert.Null(await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(ChannelErrorCode.Normal, (await b.Completion.WaitAsync(ChannelTestKit.Guard)).Code);
        }

        static async Task Exchange(SecureChannel sender, SecureChannel receiver, int seed)
        {
            var sending = Task.Run(async () =>
            {
                foreach (var size in Sizes)
                {
                    await sender.SendAsync(ChannelTestKit.Pattern(size, seed + size));
                }
            });

            foreach (var size in Sizes)
            {
                using var message = await receiver.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
                Assert.NotNull(message);
                Assert.Equal(size, message.Payload.Length);
                Assert.True(message.Payload.Span.SequenceEqual(ChannelTestKit.Pattern(size, seed + size)), $"The {size}-byte message arrived altered.");
            }

            await sending;
        }
    }

    [Theory]
    [InlineData(Transport.Memory)]
    [InlineData(Transport.Tcp)]
    public async Task AMessageOfExactlyTheLimitIsSentAndOneByteMoreIsRefusedOnSend(Transport transport)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var settings = new ChannelTestKit.ChannelSettings { MaxMessageSize = Limit };
        await using var tcp = transport == Transport.Tcp ? await LoopbackTcp.ConnectAsync() : null;
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice, settings: settings), kit.Options(bob, settings: settings), tcp?.Ends);
        await using (a)
        await using (b)
        {
            var tooLarge = await Assert.ThrowsAsync<SecureChannelException>(async () => await a.SendAsync(new byte[Limit + 1]));
            Assert.Equal(ChannelErrorCode.MessageTooLarge, tooLarge.Code);
            Assert.False(tooLarge.FromPeer);

            // The refusal is local: the channel stays open and the limit itself still goes through.
            var atLimit = ChannelTestKit.Pattern(Limit, 9);
            var sending = a.SendAsync(atLimit).AsTask();
            using var received = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            await sending.WaitAsync(ChannelTestKit.Guard);
            Assert.True(received!.Payload.Span.SequenceEqual(atLimit));
            Assert.False(a.Completion.IsCompleted);
            Assert.False(b.Completion.IsCompleted);
        }
    }

    [Fact]
    public async Task AMessageOverTheReceiversLimitEndsTheChannelWithMessageTooLargeAfterEarlierMessages()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (a, b) = await ChannelTestKit.OpenAsync(
            kit.Options(alice),
            kit.Options(bob, settings: new ChannelTestKit.ChannelSettings { MaxMessageSize = 20_000 }));
        await using (a)
        await using (b)
        {
            await a.SendAsync("fits"u8.ToArray());
            // Everything fits in the pipe below its pause threshold, so no send is still flushing when bob quits.
            await a.SendAsync(new byte[20_000]);
            await a.SendAsync(new byte[20_001]);

            using (var first = await b.ReceiveAsync())
            using (var second = await b.ReceiveAsync())
            {
                Assert.Equal("fits"u8.ToArray(), first!.Payload.ToArray());
                Assert.Equal(20_000, second!.Payload.Length);
            }

            var local = await Assert.ThrowsAsync<SecureChannelException>(async () => await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(ChannelErrorCode.MessageTooLarge, local.Code);
            Assert.False(local.FromPeer);

            var remote = await a.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.MessageTooLarge, remote.Code);
            Assert.True(remote.FromPeer);
        }
    }

    [Fact]
    public async Task WhenThePeerRefusesAMessageStillBeingFlushedTheSenderLearnsThePeersReason()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);

        // Alice's flush of a 200 kB message is still waiting when bob refuses it at its second fragment, sends
        // CLOSE(MessageTooLarge) and stops reading; her flush then reports that the reader completed. Bob's records
        // reach alice through a relay that holds everything after ACCEPT until her send has returned (or her
        // channel has ended), so bob's CLOSE is in her input, not yet read, when her flush returns.
        var toBob = new Pipe();
        var fromBob = new Pipe();
        var toAlice = new Pipe();
        var release = new TaskCompletionSource();
        var relay = new FrameRelay(fromBob.Reader, toAlice.Writer, new FaultPlan().Delay(2, release.Task));
        var aliceOutput = new HeldFlushWriter(toBob.Writer);
        var (a, b) = await ChannelTestKit.OpenAsync(
            kit.Options(alice),
            kit.Options(bob, settings: new ChannelTestKit.ChannelSettings { MaxMessageSize = 100_000 }),
            (new ChannelTestKit.DuplexPipe(toAlice.Reader, aliceOutput), new ChannelTestKit.DuplexPipe(toBob.Reader, fromBob.Writer)));
        await using (a)
        await using (b)
        {
            aliceOutput.HoldNextFlush();
            var send = a.SendAsync(new byte[200_000]).AsTask();
            Assert.Equal(ChannelErrorCode.MessageTooLarge, (await b.Completion.WaitAsync(ChannelTestKit.Guard)).Code);

            // Disposing waits for bob's pump, which completes his reader: alice's flush may now say so.
            await b.DisposeAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            await aliceOutput.ReleaseAsReaderCompletedAsync();
            await Task.WhenAny(send, a.Completion).WaitAsync(ChannelTestKit.Guard);
            release.SetResult();

            var ended = await a.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.True(
                ended.Code == ChannelErrorCode.MessageTooLarge && ended.FromPeer,
                $"Alice ended with {ended.Code} (from peer: {ended.FromPeer}: {ended.Reason}) although bob's CLOSE(MessageTooLarge) was waiting in her input.");
            await relay.Completion.WaitAsync(ChannelTestKit.Guard);
        }
    }

    [Fact]
    public async Task AMessageOfManySegmentsArrivesJoined()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob));
        await using (a)
        await using (b)
        {
            var whole = ChannelTestKit.Pattern(150_000, 3);
            await a.SendAsync(Segments(whole, 7, 65_000, 70_000));

            using var message = await b.ReceiveAsync();
            Assert.True(message!.Payload.Span.SequenceEqual(whole));
        }
    }

    [Fact]
    public async Task ConcurrentSendersNeverInterleaveTheirMessages()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob));
        await using (a)
        await using (b)
        {
            const int Senders = 4;
            const int PerSender = 10;
            var sending = Task.WhenAll(Enumerable.Range(0, Senders).Select(s => Task.Run(async () =>
            {
                for (var n = 0; n < PerSender; n++)
                {
                    // Multi-fragment messages, so an interleaving of fragments would show.
                    var message = ChannelTestKit.Pattern(70_000 + n, (s * 16) + n);
                    message[0] = (byte)s;
                    message[1] = (byte)n;
                    await a.SendAsync(message);
                }
            })));

            var next = new int[Senders];
            for (var i = 0; i < Senders * PerSender; i++)
            {
                using var message = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
                var (s, n) = (message!.Payload.Span[0], message.Payload.Span[1]);
                Assert.Equal(next[s]++, n);
                var expected = ChannelTestKit.Pattern(70_000 + n, (s * 16) + n);
                Assert.True(message.Payload.Span[2..].SequenceEqual(expected.AsSpan(2)));
            }

            await sending.WaitAsync(ChannelTestKit.Guard);
        }
    }

    private static ReadOnlySequence<byte> Segments(byte[] whole, params int[] cuts)
    {
        Segment? first = null;
        Segment? last = null;
        var start = 0;
        foreach (var end in cuts.Append(whole.Length))
        {
            var segment = new Segment(whole.AsMemory(start, end - start), last);
            first ??= segment;
            last = segment;
            start = end;
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    /// <summary>
    /// A pipe writer whose next flush, once held, passes the data on at once but reports back only when the test
    /// says, and then as "the reader completed" (what a pipe reports when the peer stops reading).
    /// </summary>
    private sealed class HeldFlushWriter(PipeWriter inner) : PipeWriter
    {
        private TaskCompletionSource<FlushResult>? _held;
        private Task<FlushResult>? _innerFlush;

        public void HoldNextFlush() => _held = new TaskCompletionSource<FlushResult>(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task ReleaseAsReaderCompletedAsync()
        {
            await _innerFlush!.WaitAsync(ChannelTestKit.Guard);
            _held!.SetResult(new FlushResult(isCanceled: false, isCompleted: true));
        }

        public override void Advance(int bytes) => inner.Advance(bytes);

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override void CancelPendingFlush()
        {
            _held?.TrySetResult(new FlushResult(isCanceled: true, isCompleted: false));
            inner.CancelPendingFlush();
        }

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            if (_held is { Task.IsCompleted: false } held && _innerFlush is null)
            {
                _innerFlush = inner.FlushAsync(CancellationToken.None).AsTask();
                return new ValueTask<FlushResult>(held.Task);
            }

            return inner.FlushAsync(cancellationToken);
        }
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, Segment? previous)
        {
            Memory = memory;
            if (previous is not null)
            {
                RunningIndex = previous.RunningIndex + previous.Memory.Length;
                previous.Next = this;
            }
        }
    }
}
