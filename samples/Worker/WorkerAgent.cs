using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Samples.Common;
using SecureChannels.Client;
using SecureChannels.Client.Hosting;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;

namespace Samples.Worker;

/// <summary>
/// The worker: a long-running agent on the .NET generic host that enrolls at the authority, registers the name
/// <c>worker</c> at the relay, keeps in step with the authority (its revocations, and the refresh of its own
/// credential), and answers quote requests (<see cref="QuoteHandler"/>).
/// </summary>
public static partial class WorkerAgent
{
    /// <summary>Runs the worker until Ctrl+C or SIGTERM. Exit codes: 0 stopped, 1 a step failed (enrollment, the relay), 2 a setting is wrong.</summary>
    public static Task<int> RunAsync(string[] args, CancellationToken cancellationToken = default) =>
        RunAsync(args, configure: null, Console.Error, cancellationToken);

    /// <summary>
    /// Runs the worker until Ctrl+C, SIGTERM or <paramref name="cancellationToken"/>, writing why it could not start to
    /// <paramref name="error"/> (never a ticket). <paramref name="configure"/> is as for <see cref="CreateHostAsync"/>.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, Action<HostApplicationBuilder>? configure, TextWriter error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(error);
        IHost host;
        try
        {
            host = await CreateHostAsync(args, configure, cancellationToken);
        }
        catch (SampleConfigurationException e)
        {
            await error.WriteLineAsync($"error: {e.Message}");
            return 2;
        }

        // The client is only IAsyncDisposable: the host must be disposed asynchronously too.
        await using (host as IAsyncDisposable)
        {
            var agent = host.Services.GetRequiredService<AgentClient>();
            try
            {
                // Starting the host redeems the ticket at the authority (SecureChannels:Client:EnrollmentTicket), then
                // starts the hop: the relay checks the credential and registers the name 'worker'.
                await host.StartAsync(cancellationToken);
            }
            catch (RelayException e) when (e.Code == RelayErrorCode.NameNotGranted)
            {
                // The ticket said what the credential grants, and it did not grant a name to register: a setting to fix.
                // (The ticket carries no attributes, so this can only be found once it was redeemed.)
                var missing = agent.Options.Names.FirstOrDefault(n => !Grants(agent, n)) ?? string.Join(", ", agent.Options.Names);
                await error.WriteLineAsync($"error: {e.Message} Create the worker's ticket with --attr relay-name={missing}.");
                return 2;
            }
            catch (Exception e) when (IsFailedStep(e))
            {
                // No credential yet: the ticket was not redeemed. Otherwise it was, and the relay is what failed.
                var step = agent.Credentials.Count == 0 ? "enrolling at the authority" : "joining the relay";
                await error.WriteLineAsync($"error: {step}: {e.Message}");
                return 1;
            }

            var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(WorkerAgent));
            LogListening(logger, agent.Identifier, agent.Options.Names, agent.Options.Relays[0].EndPoint);
            await host.WaitForShutdownAsync(cancellationToken);
        }

        return 0;
    }

    /// <summary>
    /// Builds the worker's host; nothing is connected yet. Starting it enrolls the agent at the authority with the
    /// one-time ticket, then starts its hop to the relay, and keeps it in step with the authority until it stops.
    /// <paramref name="configure"/> runs before the settings are read: tests add their configuration there.
    /// </summary>
    /// <exception cref="SampleConfigurationException">A setting is missing or wrong.</exception>
    public static async Task<IHost> CreateHostAsync(string[] args, Action<HostApplicationBuilder>? configure = null, CancellationToken cancellationToken = default)
    {
        // appsettings.json is read from next to the program; the identity files from the current directory (SampleSettings).
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        configure?.Invoke(builder);
        var settings = SampleSettings.Read(builder.Configuration);

        // A fresh Ed25519 key on every run, held in memory only: the worker is a new identity each time, which a sample
        // can afford because it enrolls with a new ticket anyway. A real deployment keeps its key so its identifier
        // survives restarts (peers' policies, the authority's registry and its audit log know it by that): an encrypted
        // FileKeyVault as the CLI uses (.securechannels/keys, Argon2id, mode 0600), or an HSM or cloud KMS behind ISigner.
        var signer = InMemorySigner.Generate();
        builder.Services.AddSingleton(signer); // Disposed with the host, which wipes the key.
        var identity = await AgentIdentity.CreateAsync(signer, TimeProvider.System, cancellationToken);

        // Text settings (Names, Policy, back-offs...) bind from SecureChannels:Client; objects that hold keys and
        // signatures are set here. The relay and the authority are added in code because the samples name them by
        // their exported identity files (SampleSettings), which a real deployment could bind as
        // SecureChannels:Client:Relays and SecureChannels:Client:Authority ({ "EndPoint": ..., "Identifier": "I..." }).
        builder.Services
            .AddSecureChannelsClient(builder.Configuration.GetSection(SecureChannelsClientOptions.Section), o =>
            {
                o.Identity = identity;
                o.Anchors = settings.Anchors;
                o.Relays.Add(new PinnedEndpointOptions { EndPoint = settings.Relay.EndPoint.ToString(), Identifier = settings.Relay.Identifier.ToString() });

                // With an authority, the host keeps the agent in step with it while it runs: its revocation lists (a
                // revoked peer's open channel is closed at once, CredentialRevoked, not when its credential would have
                // expired) and its own credential, refreshed ahead of expiry and presented in every open channel. The
                // ticket is redeemed there when the host starts, before the hop: the relay admits only agents with a
                // credential from its authority, and registers 'worker' only for one that grants relay-name=worker.
                o.Authority = new PinnedEndpointOptions { EndPoint = settings.AuthorityEndPoint.ToString(), Identifier = settings.Authority.Identifier.ToString() };
                o.EnrollmentTicket = settings.Ticket;
            })
            .AddChannelHandler<QuoteHandler>();
        return builder.Build();
    }

    private static bool Grants(AgentClient agent, string name) =>
        agent.Credentials.Any(c => c.Leaf.Credential.Attributes.Entries.TryGetValue("relay-name", out var granted) && granted.Contains(name));

    private static bool IsFailedStep(Exception e) =>
        e is AuthorityException or SecureChannelException or RelayException or IOException or SocketException or TimeoutException;

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Listening as {Identifier} under the name(s) {Names} at the relay {Relay}")]
    private static partial void LogListening(ILogger logger, Identifier identifier, IReadOnlyList<string> names, System.Net.IPEndPoint relay);
}
