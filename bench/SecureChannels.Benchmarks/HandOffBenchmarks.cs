using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Channels;
using BenchmarkDotNet.Attributes;

namespace SecureChannels.Benchmarks;

/// <summary>
/// The secure channel's receive structure without any cryptography or framing, as a floor for its per-message
/// cost: the sender writes and flushes 64 bytes into a default <see cref="Pipe"/>; a pump task that was waiting on
/// the pipe (as SecureChannel's PumpAsync waits) reads them and writes a pooled buffer into a bounded
/// <see cref="Channel{T}"/> of capacity 16 (as the channel's inbox); the receiver, already waiting on that
/// inbox, takes it. Two thread-pool hand-offs per message, as in <see cref="ChannelThroughputBenchmarks"/>.
/// TLS in <see cref="TlsThroughputBenchmarks"/> reads in the caller and makes none for small messages. Like the
/// channel, <see cref="ChannelThroughputBenchmarks.MessagesPerInvoke"/> messages per invocation, reported per message.
/// </summary>
[MemoryDiagnoser]
public class HandOffBenchmarks
{
    private const int MessageLength = 64;

    private readonly Pipe _pipe = new();
    private readonly Channel<byte[]> _inbox = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(16) { SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly byte[] _payload = new byte[MessageLength];
    private readonly byte[] _delivered = new byte[MessageLength];
    private Task _pump = Task.CompletedTask;

    [GlobalSetup]
    public void Setup() => _pump = Task.Run(PumpAsync);

    [GlobalCleanup]
    public async Task Cleanup()
    {
        // The pump sees the end of the pipe and returns.
        await _pipe.Writer.CompleteAsync().ConfigureAwait(false);
        await _pump.ConfigureAwait(false);
    }

    [Benchmark(OperationsPerInvoke = ChannelThroughputBenchmarks.MessagesPerInvoke)]
    public async Task<int> PumpAndInbox()
    {
        var received = 0;
        for (var i = 0; i < ChannelThroughputBenchmarks.MessagesPerInvoke; i++)
        {
            var flush = _pipe.Writer.WriteAsync(_payload);
            var message = await _inbox.Reader.ReadAsync().ConfigureAwait(false);
            await flush.ConfigureAwait(false);
            received += message.Length;
        }

        return received;
    }

    private async Task PumpAsync()
    {
        var reader = _pipe.Reader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                while (buffer.Length >= MessageLength)
                {
                    buffer.Slice(0, MessageLength).CopyTo(_delivered);
                    buffer = buffer.Slice(MessageLength);
                    await _inbox.Writer.WriteAsync(_delivered).ConfigureAwait(false);
                }

                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }
}
