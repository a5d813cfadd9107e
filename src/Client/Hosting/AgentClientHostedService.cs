using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace SecureChannels.Client.Hosting;

/// <summary>Starts the agent's hops with the host and disposes the agent (closing its channels and hops) when the host stops.</summary>
/// <remarks>
/// The client is resolved at start, not at construction: the host resolves hosted services before it validates
/// options, and constructing the client from invalid options would hide the validation's message behind its own.
/// </remarks>
internal sealed class AgentClientHostedService(IServiceProvider services) : IHostedService
{
    private AgentClient? _client;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _client = services.GetRequiredService<AgentClient>();
        await _client.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_client is { } client)
        {
            // Channel handlers stopped first (hosted services stop in reverse order); disposing ends what they left open.
            await client.DisposeAsync().AsTask().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
