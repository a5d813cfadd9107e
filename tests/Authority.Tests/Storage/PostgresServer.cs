using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Npgsql;

namespace SecureChannels.Authority.Tests.Storage;

/// <summary>The PostgreSQL test classes share one server: starting it is the slow part, a database per test is cheap.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresServerDefinition : ICollectionFixture<PostgresServer>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "PostgreSQL";
}

/// <summary>
/// A PostgreSQL server for tests. With <see cref="EnvironmentVariable"/> set to a connection string (PostgreSQL 13 or
/// later, for <c>DROP DATABASE … WITH (FORCE)</c>, and a role allowed to create databases), that server is used; otherwise a throwaway server is started from Debian's binaries under
/// /usr/lib/postgresql/*/bin in a temporary directory, on a free loopback port, and stopped and deleted at the end.
/// Missing binaries fail every test that needs the server: a database test that silently does not run proves nothing.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    /// <summary>A connection string to an existing server, used instead of starting one.</summary>
    public const string EnvironmentVariable = "SECURECHANNELS_TEST_POSTGRES";

    private const string BinariesRoot = "/usr/lib/postgresql";
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan CommandDeadline = TimeSpan.FromSeconds(120);

    private string? _directory;
    private string? _dataDirectory;
    private string? _pgCtl;
    private bool _asPostgresUser;
    private NpgsqlDataSource? _admin;
    private string _adminConnectionString = "";

    /// <summary>Starts (or finds) the server.</summary>
    public async Task InitializeAsync()
    {
        var external = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(external))
        {
            _adminConnectionString = external;
        }
        else
        {
            _adminConnectionString = await StartThrowawayServerAsync();
        }

        _admin = NpgsqlDataSource.Create(_adminConnectionString);
        await WaitUntilAcceptingAsync(_admin);
    }

    /// <summary>Creates an empty database with a random name and returns a connection string to it.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var admin = _admin ?? throw new InvalidOperationException("The server is not started.");
        var name = "sc_test_" + Guid.NewGuid().ToString("N");

        // An identifier cannot be a parameter; the name is ours, lowercase hex, so quoting it is enough.
        var command = admin.CreateCommand($"CREATE DATABASE \"{name}\"");
        await using (command)
        {
            await command.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(_adminConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>Drops a database made by <see cref="CreateDatabaseAsync"/>, closing whatever is still connected to it.</summary>
    public async Task DropDatabaseAsync(string connectionString)
    {
        var admin = _admin ?? throw new InvalidOperationException("The server is not started.");
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database;
        if (name is null || !name.StartsWith("sc_test_", StringComparison.Ordinal))
        {
            throw new ArgumentException("Only databases this fixture created are dropped.", nameof(connectionString));
        }

        var command = admin.CreateCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        await using (command)
        {
            await command.ExecuteNonQueryAsync();
        }
    }

    /// <summary>Stops a server this fixture started and deletes its directory.</summary>
    public async Task DisposeAsync()
    {
        if (_admin is not null)
        {
            await _admin.DisposeAsync();
        }

        if (_dataDirectory is not null && _pgCtl is not null)
        {
            // Immediate: the data is thrown away anyway, so there is nothing to write out first.
            await ExecuteAsync(_pgCtl, ["-D", _dataDirectory, "-m", "immediate", "-w", "stop"]);
        }

        if (_directory is not null && Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private async Task<string> StartThrowawayServerAsync()
    {
        var bin = FindBinaries()
            ?? throw new InvalidOperationException(
                $"No PostgreSQL server binaries (initdb and pg_ctl) under {BinariesRoot}/*/bin. Install Debian's 'postgresql' " +
                $"package (.ci/run does), or set {EnvironmentVariable} to a connection string of a server whose role may create databases.");
        var initdb = Path.Combine(bin, "initdb");
        var pgCtl = _pgCtl = Path.Combine(bin, "pg_ctl");

        // PostgreSQL refuses to run as root; as root, its tools run as the postgres user, who must own the directory.
        _asPostgresUser = (await RunAsync("id", ["-u"], asPostgres: false)).Trim() == "0";
        _directory = Directory.CreateTempSubdirectory("securechannels-pg-").FullName;
        if (_asPostgresUser)
        {
            await RunAsync("chown", ["postgres:postgres", _directory], asPostgres: false);
        }

        _dataDirectory = Path.Combine(_directory, "data");
        await RunAsync(initdb, ["-D", _dataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);

        // The port is free when asked, but another process may take it before the server binds it: try a few.
        var log = Path.Combine(_directory, "server.log");
        for (var attempt = 1; ; attempt++)
        {
            var port = FreeLoopbackPort();
            var options = string.Join(' ',
                "-c listen_addresses=127.0.0.1",
                $"-p {port.ToString(CultureInfo.InvariantCulture)}",
                $"-k {_directory}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off");
            var (exitCode, _) = await ExecuteAsync(
                pgCtl,
                ["-D", _dataDirectory, "-l", log, "-w", "-t", ((int)StartDeadline.TotalSeconds).ToString(CultureInfo.InvariantCulture), "-o", options, "start"]);
            if (exitCode == 0)
            {
                return new NpgsqlConnectionStringBuilder
                {
                    Host = "127.0.0.1",
                    Port = port,
                    Username = "postgres",
                    Database = "postgres",
                    Timeout = 5,
                }.ConnectionString;
            }

            if (attempt == 3)
            {
                var tail = File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(20)) : "(no log)";
                throw new InvalidOperationException($"PostgreSQL did not start in {_dataDirectory}. Server log:\n{tail}");
            }
        }
    }

    private static string? FindBinaries()
    {
        if (!Directory.Exists(BinariesRoot))
        {
            return null;
        }

        return Directory.GetDirectories(BinariesRoot)
            .Select(version => (Version: int.TryParse(Path.GetFileName(version), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1, Bin: Path.Combine(version, "bin")))
            .Where(c => File.Exists(Path.Combine(c.Bin, "initdb")) && File.Exists(Path.Combine(c.Bin, "pg_ctl")))
            .OrderByDescending(c => c.Version)
            .Select(c => c.Bin)
            .FirstOrDefault();
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    // pg_ctl -w returns once the throwaway server accepts connections, and a server named by the environment is
    // running already: one connection proves it, and a failure says why at once.
    private static async Task WaitUntilAcceptingAsync(NpgsqlDataSource admin)
    {
        var connection = await admin.OpenConnectionAsync();
        await connection.DisposeAsync();
    }

    /// <summary>Runs a tool that must succeed; its output.</summary>
    private async Task<string> RunAsync(string file, IReadOnlyList<string> arguments, bool? asPostgres = null)
    {
        var (exitCode, output) = await ExecuteAsync(file, arguments, asPostgres);
        return exitCode == 0
            ? output
            : throw new InvalidOperationException($"{Path.GetFileName(file)} {string.Join(' ', arguments)} exited with {exitCode}:\n{output}");
    }

    /// <summary>Runs a tool to completion within <see cref="CommandDeadline"/> (as the postgres user when running as root).</summary>
    private async Task<(int ExitCode, string Output)> ExecuteAsync(string file, IReadOnlyList<string> arguments, bool? asPostgres = null)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (asPostgres ?? _asPostgresUser)
        {
            start.FileName = "runuser";
            foreach (var argument in (string[])["-u", "postgres", "--", file])
            {
                start.ArgumentList.Add(argument);
            }
        }
        else
        {
            start.FileName = file;
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(CommandDeadline);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(file)} did not finish within {CommandDeadline}.");
        }

        return (process.ExitCode, new StringBuilder().Append(await output).Append(await error).ToString());
    }
}
