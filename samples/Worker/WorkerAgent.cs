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
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;

namespace Samples.Worker;

/// <summary>
/// The worker: a long-running agent on the .NET generic host that enrolls at the authority, registers the name
/// <c>worker</c> at the relay, follows the authority's revocations, and answers quote requests (<see cref="QuoteHandler"/>).
/// </summary>
public static partial class WorkerAgent
{
    /// <summary>Runs the worker until Ctrl+C or SIGTERM. Exit codes: 0 stopped, 1 a step failed (enrollment, the relay), 2 a setting is wrong.</summary>
    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken = default)
    {
        IHost host;
        try
        {
            host = await CreateHostAsync(args, configure: null, cancellationToken);
        }
        catch (SampleConfigurationException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 2;
        }
        catch (Exception e) when (IsFailedStep(e))
        {
            await Console.Error.WriteLineAsync($"error: enrolling at the authority: {e.Message}");
            return 1;
        }

        // The client is only IAsyncDisposable: the host must be disposed asynchronously too.
        await using (host as IAsyncDisposable)
        {
            try
            {
                // Starting the host starts the hop: the relay checks the credential and registers the name 'worker'.
                await host.StartAsync(cancellationToken);
            }
            catch (Exception e) when (IsFailedStep(e))
            {
                await Console.Error.WriteLineAsync($"error: joining the relay: {e.Message}");
                return 1;
            }

            var agent = host.Services.GetRequiredService<AgentClient>();
            var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(WorkerAgent));
            LogListening(logger, agent.Identifier, agent.Options.Names, agent.Options.Relays[0].EndPoint);
            await host.WaitForShutdownAsync(cancellationToken);
        }

        return 0;
    }

    /// <summary>
    /// Builds the worker's host and enrolls its agent at the authority with the one-time ticket; the host is not started
    /// yet (<see cref="RunAsync"/> starts it). <paramref name="configure"/> runs before the settings are read: tests add
    /// their configuration there.
    /// </summary>
    /// <exception cref="SampleConfigurationException">A setting is missing or wrong.</exception>
    /// <exception cref="AuthorityException">The authority refused the ticket (unknown, used, expired) or the credential lacks <c>relay-name</c> for a name to register.</exception>
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
        // signatures are set here. The relay is added in code because its identifier may be given as a file.
        builder.Services
            .AddSecureChannelsClient(builder.Configuration.GetSection(SecureChannelsClientOptions.Section), o =>
            {
                o.Identity = identity;
                o.Anchors = settings.Anchors;
                o.Relays.Add(new RelayEndpointOptions { EndPoint = settings.Relay.EndPoint.ToString(), Identifier = settings.Relay.Identifier.ToString() });
            })
            .AddChannelHandler<QuoteHandler>();
        builder.Services.AddSingleton(settings);
        builder.Services.AddHostedService<AuthorityUpkeep>();

        var host = builder.Build();
        try
        {
            // Enrolled before the host starts: the relay admits only agents with a credential from its authority, and
            // registers a name only for a credential that grants it (relay-name=worker), so the hop needs the credential.
            var agent = host.Services.GetRequiredService<AgentClient>();
            var credential = (await agent.EnrollAsync(settings.AuthorityEndPoint, settings.Authority.Identifier, settings.Ticket, cancellationToken)).Leaf.Credential;
            var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(WorkerAgent));
            LogEnrolled(logger, agent.Identifier, credential.Principal, credential.Attributes, credential.NotAfter);

            // Without this check a ticket that lacks the name fails later, at the relay, as a refused HELLO.
            var granted = credential.Attributes.Entries.TryGetValue("relay-name", out var names) ? names : [];
            if (agent.Options.Names.FirstOrDefault(n => !granted.Contains(n)) is { } missing)
            {
                throw new SampleConfigurationException($"the credential does not grant the name '{missing}': create the worker's ticket with --attr relay-name={missing}.");
            }

            return host;
        }
        catch
        {
            await ((IAsyncDisposable)host).DisposeAsync();
            throw;
        }
    }

    private static bool IsFailedStep(Exception e) =>
        e is AuthorityException or SecureChannelException or RelayException or IOException or SocketException or TimeoutException;

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Enrolled as {Identifier}: acts for {Principal} with {Attributes}, credential valid until {NotAfter:u}")]
    private static partial void LogEnrolled(ILogger logger, Identifier identifier, Principal principal, AttributeSet attributes, DateTimeOffset notAfter);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Listening as {Identifier} under the name(s) {Names} at the relay {Relay}")]
    private static partial void LogListening(ILogger logger, Identifier identifier, IReadOnlyList<string> names, System.Net.IPEndPoint relay);
}
