using System.Diagnostics;
using System.Security.Cryptography;
using SecureChannels.Protocol.Channel;

namespace SecureChannels.Benchmarks;

/// <summary>
/// Traffic over an open secure channel as the side-by-side runs (<c>--relay</c>, <c>compare</c>) drive it, whatever
/// carries the channel: a pipelined bulk transfer, request-and-echo round trips, and a byte-for-byte delivery check.
/// </summary>
internal static class ChannelTraffic
{
    /// <summary>
    /// The sender awaits <see cref="SecureChannel.SendAsync(ReadOnlyMemory{byte}, CancellationToken)"/> of message after
    /// message while a receiver task receives and disposes them (pipelined, as a bulk transfer). Returns the time from the
    /// first send to the last message received, after checking every byte arrived.
    /// </summary>
    public static async Task<TimeSpan> SendReceiveAsync(SecureChannel sender, SecureChannel receiver, ReadOnlyMemory<byte> payload, long count)
    {
        var started = Stopwatch.GetTimestamp();
        var receiving = Task.Run(async () =>
        {
            long received = 0;
            for (long i = 0; i < count; i++)
            {
                using var message = await receiver.ReceiveAsync().ConfigureAwait(false) ?? throw new InvalidOperationException("The channel closed.");
                received += message.Payload.Length;
            }

            return received;
        });
        for (long i = 0; i < count; i++)
        {
            await sender.SendAsync(payload).ConfigureAwait(false);
        }

        var total = await receiving.WaitAsync(RelayPeers.Guard).ConfigureAwait(false);
        var elapsed = Stopwatch.GetElapsedTime(started);
        if (total != count * payload.Length)
        {
            throw new InvalidOperationException($"The receiver got {total} bytes instead of {count * payload.Length}.");
        }

        return elapsed;
    }

    /// <summary>
    /// <paramref name="count"/> round trips: the initiator sends <paramref name="payload"/> and waits for its echo, which a
    /// task on the responder sends back. Returns each round trip's time in microseconds, timed by the initiator.
    /// </summary>
    public static async Task<double[]> RoundTripsAsync(SecureChannel initiator, SecureChannel responder, ReadOnlyMemory<byte> payload, int count)
    {
        var echo = Task.Run(async () =>
        {
            for (var i = 0; i < count; i++)
            {
                using var message = await responder.ReceiveAsync().ConfigureAwait(false) ?? throw new InvalidOperationException("The channel closed.");
                await responder.SendAsync(message.Payload).ConfigureAwait(false);
            }
        });
        var rtts = new double[count];
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await initiator.SendAsync(payload).ConfigureAwait(false);
            using var reply = await initiator.ReceiveAsync().ConfigureAwait(false) ?? throw new InvalidOperationException("The channel closed.");
            rtts[i] = Stopwatch.GetElapsedTime(started).TotalMicroseconds;
            if (reply.Payload.Length != payload.Length)
            {
                throw new InvalidOperationException($"The echo has {reply.Payload.Length} bytes instead of {payload.Length}.");
            }
        }

        await echo.WaitAsync(RelayPeers.Guard).ConfigureAwait(false);
        return rtts;
    }

    /// <summary>Sends a few distinct random messages of <paramref name="size"/> bytes and checks each arrives intact and in order: a broken build fails here, before anything is timed.</summary>
    public static async Task CheckDeliveryAsync(SecureChannel sender, SecureChannel receiver, int size)
    {
        for (var i = 0; i < 3; i++)
        {
            var payload = RandomNumberGenerator.GetBytes(size);
            var send = sender.SendAsync(payload);
            using (var message = await receiver.ReceiveAsync().AsTask().WaitAsync(RelayPeers.Guard).ConfigureAwait(false))
            {
                if (message is null || !message.Payload.Span.SequenceEqual(payload))
                {
                    throw new InvalidOperationException($"A {size}-byte message did not arrive as sent.");
                }
            }

            await send.ConfigureAwait(false);
        }
    }
}
