using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Client.Hosting;

/// <summary>
/// Accepts every incoming channel and serves each with a <typeparamref name="THandler"/> in a scope of its own, at most
/// <see cref="SecureChannelsClientOptions.MaxConcurrentChannels"/> at once. A slot is taken before a channel is
/// accepted, so the channels beyond the limit stay in the client's bounded queue (and past it are refused with
/// LimitExceeded) instead of being accepted and left waiting with their handshake done.
/// </summary>
internal sealed partial class AgentChannelHandlerService<THandler>(
    IServiceProvider services,
    IServiceScopeFactory scopes,
    IOptions<SecureChannelsClientOptions> options,
    ILogger<AgentChannelHandlerService<THandler>> logger) : BackgroundService
    where THandler : class, IAgentChannelHandler
{
    // How long a channel whose handler returned waits for the peer's close before it is reset: a reset may overtake
    // what the handler sent last, and a peer that never closes must not hold the slot for long.
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<Task, byte> _serving = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var client = services.GetRequiredService<AgentClient>();
        using var slots = new SemaphoreSlim(options.Value.MaxConcurrentChannels);
        try
        {
            while (true)
            {
                await slots.WaitAsync(stoppingToken).ConfigureAwait(false);
                AgentChannel channel;
                try
                {
                    channel = await client.AcceptChannelAsync(stoppingToken).ConfigureAwait(false);
                }
                catch
                {
                    slots.Release();
                    throw;
                }

                var serving = Task.Run(() => ServeAsync(channel, client.Options.TimeProvider, slots, stoppingToken), CancellationToken.None);
                _serving[serving] = 0;
                _ = serving.ContinueWith(done => _serving.TryRemove(done, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The host is stopping.
        }
        catch (ObjectDisposedException)
        {
            // The client was disposed under the service: no channel will come any more.
            LogClientGone(logger);
        }
        finally
        {
            // The handlers saw the same token; the semaphore must outlive them, so their end is awaited here.
            await Task.WhenAll(_serving.Keys).ConfigureAwait(false);
        }
    }

    private async Task ServeAsync(AgentChannel channel, TimeProvider time, SemaphoreSlim slots, CancellationToken stoppingToken)
    {
        Identifier peer = default;
        var served = false;
        try
        {
            peer = channel.Peer.Identifier;
            var scope = scopes.CreateAsyncScope();
            await using (scope.ConfigureAwait(false))
            {
                var handler = scope.ServiceProvider.GetRequiredService<THandler>();
                await handler.HandleAsync(channel, stoppingToken).ConfigureAwait(false);
                served = true;
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopped with the host, as asked.
        }
        catch (Exception e)
        {
            // The type only: an exception's message may quote what the peer sent, and payloads never reach the logs.
            LogHandlerFailed(logger, typeof(THandler).Name, peer, e.GetType().FullName);
        }
        finally
        {
            try
            {
                if (served)
                {
                    await CloseAsync(channel, time, stoppingToken).ConfigureAwait(false);
                }

                await channel.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                slots.Release();
            }
        }
    }

    // A handler that returned is done: a graceful close delivers everything it sent before the channel is disposed.
    // A failed or cancelled one is disposed at once, which the peer sees as the channel going away.
    private static async Task CloseAsync(AgentChannel channel, TimeProvider time, CancellationToken stoppingToken)
    {
        try
        {
            await channel.CloseAsync(stoppingToken).WaitAsync(CloseGrace, time, stoppingToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or SecureChannelException or ObjectDisposedException)
        {
            // The peer did not close in time, the host is stopping, or the channel ended meanwhile: dispose it anyway.
        }
    }

    [LoggerMessage(EventId = 80, Level = LogLevel.Warning, Message = "Channel handler {Handler} failed serving {Peer}: {ExceptionType}")]
    private static partial void LogHandlerFailed(ILogger logger, string handler, Identifier peer, string? exceptionType);

    [LoggerMessage(EventId = 81, Level = LogLevel.Information, Message = "The agent was disposed; no more incoming channels are served")]
    private static partial void LogClientGone(ILogger logger);
}
