using System.Security.Cryptography;

namespace SecureChannels.Benchmarks;

/// <summary>
/// Where a channel message's allocations happen, which BenchmarkDotNet's per-operation total (every thread,
/// harness included) cannot say. For each size, over one channel of <see cref="ChannelPeers"/>, sends and
/// receives messages as <see cref="ChannelThroughputBenchmarks.SendReceive"/> does and counts: the bytes the
/// sending thread allocates inside the SendAsync call (the send path up to its first wait, including the
/// state machine it boxes if it must wait), the bytes the receiving thread allocates inside the ReceiveAsync
/// call and the message's Dispose, and everything allocated by every thread (GC.GetTotalAllocatedBytes). The
/// rest is the channel's receive pump and the thread-pool hand-offs between the three.
/// </summary>
internal static class ChannelAllocationProbe
{
    // About 64 MiB per size after a quarter as much warm-up: a few seconds in all.
    private const long BytesPerSize = 64L << 20;

    public static async Task<IReadOnlyList<Sample>> RunAsync(IReadOnlyList<int> sizes)
    {
        var samples = new List<Sample>(sizes.Count);
        using var peers = await ChannelPeers.CreateAsync().ConfigureAwait(false);
        foreach (var size in sizes)
        {
            var (initiator, responder) = await peers.OpenAsync().ConfigureAwait(false);
            await using (initiator.ConfigureAwait(false))
            await using (responder.ConfigureAwait(false))
            {
                var payload = RandomNumberGenerator.GetBytes(size);
                var messages = (int)Math.Clamp(BytesPerSize / size, 64, 20_000);
                await MeasureAsync(initiator, responder, payload, messages / 4).ConfigureAwait(false);
                samples.Add(await MeasureAsync(initiator, responder, payload, messages).ConfigureAwait(false));
            }
        }

        return samples;
    }

    private static async Task<Sample> MeasureAsync(Protocol.Channel.SecureChannel sender, Protocol.Channel.SecureChannel receiver, byte[] payload, int messages)
    {
        long sendCall = 0;
        long receiveCall = 0;
        var total = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < messages; i++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            var send = sender.SendAsync(payload);
            sendCall += GC.GetAllocatedBytesForCurrentThread() - before;

            before = GC.GetAllocatedBytesForCurrentThread();
            var receive = receiver.ReceiveAsync();
            receiveCall += GC.GetAllocatedBytesForCurrentThread() - before;
            var message = await receive.ConfigureAwait(false) ?? throw new InvalidOperationException("The channel closed.");
            if (message.Payload.Length != payload.Length)
            {
                throw new InvalidOperationException($"A message of {message.Payload.Length} bytes arrived instead of {payload.Length}.");
            }

            before = GC.GetAllocatedBytesForCurrentThread();
            message.Dispose();
            receiveCall += GC.GetAllocatedBytesForCurrentThread() - before;
            await send.ConfigureAwait(false);
        }

        total = GC.GetTotalAllocatedBytes(precise: true) - total;
        return new Sample(payload.Length, messages, (double)sendCall / messages, (double)receiveCall / messages, (double)total / messages);
    }

    /// <summary>Bytes allocated per message, averaged over <paramref name="Messages"/>.</summary>
    public sealed record Sample(int Size, int Messages, double SendCall, double ReceiveCall, double Total)
    {
        /// <summary>Allocated outside the two calls: the receive pump, pipe and thread-pool hand-offs.</summary>
        public double Elsewhere => Total - SendCall - ReceiveCall;
    }
}
