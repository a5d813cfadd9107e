using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SecureChannels.Authority.Issuance;
using SecureChannels.Protocol.Authority;

namespace SecureChannels.Authority.Publication;

/// <summary>
/// Reads the store every <see cref="AuthorityOptions.StorePollInterval"/> for revocation lists and policies
/// published elsewhere: by another instance sharing a PostgreSQL database, or by the CLI on the data folder.
/// What this instance publishes itself is pushed at once and never waits for the poll.
/// </summary>
internal sealed partial class StoreWatcher(AuthorityService service, AuthorityOptions options, TimeProvider time, ILogger<StoreWatcher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.StorePollInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    await service.LoadPublishedAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is AuthorityException or Protocol.Wire.WireFormatException or Protocol.Credentials.CredentialException)
                {
                    // The store is down: what was published stays in force; the next tick tries again.
                    LogPollFailed(logger, e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "Reading publications from the store failed: {Why}")]
    private static partial void LogPollFailed(ILogger logger, string why);
}
