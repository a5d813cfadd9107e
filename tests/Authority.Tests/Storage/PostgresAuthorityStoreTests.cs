using System.Net;
using System.Net.Sockets;
using Npgsql;
using SecureChannels.Authority.Storage;

namespace SecureChannels.Authority.Tests.Storage;

/// <summary>The store contract on PostgreSQL, each test in a database of its own on the shared <see cref="PostgresServer"/>.</summary>
[Collection(PostgresServerDefinition.Name)]
public sealed class PostgresAuthorityStoreTests(PostgresServer server) : AuthorityStoreContract
{
    private string? _connectionString;

    private string ConnectionString => _connectionString ?? throw new InvalidOperationException("The test database is not created yet.");

    /// <inheritdoc />
    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _connectionString = await server.CreateDatabaseAsync();
    }

    /// <inheritdoc />
    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_connectionString is not null)
        {
            await server.DropDatabaseAsync(_connectionString);
        }
    }

    /// <inheritdoc />
    protected override Task<IAuthorityStore> CreateStoreAsync() =>
        Task.FromResult<IAuthorityStore>(new PostgresAuthorityStore(ConnectionString));

    /// <inheritdoc />
    protected override IAuthorityStore CreateUnreachableStore() =>
        new PostgresAuthorityStore(ClosedPortConnectionString("not-the-password"));

    [Fact]
    public async Task Two_instances_on_separate_data_sources_write_one_gapless_audit_log()
    {
        // Two data sources are two connection pools, as two authority processes on one database would have.
        await using var sourceA = NpgsqlDataSource.Create(ConnectionString);
        await using var sourceB = NpgsqlDataSource.Create(ConnectionString);
        var storeA = Track(new PostgresAuthorityStore(sourceA));
        var storeB = Track(new PostgresAuthorityStore(sourceB));
        await Task.WhenAll(storeA.InitializeAsync(), storeB.InitializeAsync()).WaitAsync(Guard);

        const int Writers = 24;
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writers = Enumerable.Range(0, Writers).Select(i => Task.Run(async () =>
        {
            await go.Task;
            var store = i % 2 == 0 ? storeA : storeB;
            await using var tx = await store.BeginAsync(write: true);
            var last = await tx.LastAuditAsync();
            await tx.AppendAuditAsync(NextAudit(last, $"sc1:instance-{i % 2}-writer-{i}"));
            await tx.CommitAsync();
        })).ToArray();
        go.SetResult();
        await Task.WhenAll(writers).WaitAsync(Guard);

        await AssertAuditChainAsync(storeA, Writers, Enumerable.Range(0, Writers).Select(i => $"sc1:instance-{i % 2}-writer-{i}"));
    }

    [Fact]
    public async Task A_write_transaction_holds_the_advisory_lock_and_a_read_transaction_does_not()
    {
        var store = await OpenStoreAsync();
        await using var outsider = NpgsqlDataSource.Create(ConnectionString);

        await using (var tx = await store.BeginAsync(write: true))
        {
            Assert.False(await TryAdvisoryLockAsync(outsider));
            await tx.CommitAsync();
        }

        Assert.True(await TryAdvisoryLockAsync(outsider));
        await using var read = await store.BeginAsync(write: false);
        Assert.Null(await read.LastAuditAsync());
        Assert.True(await TryAdvisoryLockAsync(outsider));
    }

    [Fact]
    public async Task A_connection_killed_mid_transaction_is_unavailable_and_disposes_cleanly()
    {
        var store = await OpenStoreAsync();
        await using var tx = await store.BeginAsync(write: true);
        await tx.InsertTicketAsync(Ticket(1));

        await using (var admin = NpgsqlDataSource.Create(ConnectionString))
        {
            var kill = admin.CreateCommand(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
            await using (kill)
            {
                Assert.True((long)(await kill.ExecuteScalarAsync() ?? 0L) >= 1);
            }
        }

        var e = await Assert.ThrowsAsync<AuthorityStoreException>(() => tx.FindTicketAsync(Id(1)).WaitAsync(Guard));
        Assert.Equal(AuthorityStoreErrorKind.Unavailable, e.Kind);
        await Assert.ThrowsAsync<InvalidOperationException>(() => tx.CommitAsync());
        await tx.DisposeAsync();

        // The rolled-back ticket is not there, once a fresh connection gets through.
        await using var fresh = new PostgresAuthorityStore(ConnectionString);
        await using var read = await fresh.BeginAsync(write: false);
        Assert.Null(await read.FindTicketAsync(Id(1)));
    }

    [Fact]
    public async Task A_failure_message_never_holds_the_password_or_the_connection_string()
    {
        const string Password = "hunter2-Pa55w0rd-do-not-print";
        await using var store = new PostgresAuthorityStore(ClosedPortConnectionString(Password));

        var e = await Assert.ThrowsAsync<AuthorityStoreException>(() => store.BeginAsync(write: true).WaitAsync(Guard));
        Assert.Equal(AuthorityStoreErrorKind.Unavailable, e.Kind);
        var everything = e.ToString();
        Assert.DoesNotContain(Password, everything, StringComparison.Ordinal);
        Assert.DoesNotContain("Password=", everything, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_database_that_does_not_exist_fails_typed()
    {
        var missing = new NpgsqlConnectionStringBuilder(ConnectionString) { Database = "sc_test_missing_" + Guid.NewGuid().ToString("N") };
        await using var store = new PostgresAuthorityStore(missing.ConnectionString);

        var e = await Assert.ThrowsAsync<AuthorityStoreException>(() => store.InitializeAsync().WaitAsync(Guard));
        Assert.Equal(AuthorityStoreErrorKind.Failed, e.Kind);
        Assert.Contains("3D000", e.Message, StringComparison.Ordinal);
    }

    private static async Task<bool> TryAdvisoryLockAsync(NpgsqlDataSource source)
    {
        // Session-level try-lock released right away: it only asks whether someone else holds the writer lock.
        var command = source.CreateCommand(
            "SELECT CASE WHEN pg_try_advisory_lock(@key) THEN pg_advisory_unlock(@key) ELSE false END");
        await using (command)
        {
            command.Parameters.AddWithValue("key", PostgresAuthorityStore.WriterLockKey);
            return (bool)(await command.ExecuteScalarAsync() ?? false);
        }
    }

    private static string ClosedPortConnectionString(string password)
    {
        // Nothing listens on a port just released; a refused connection is immediate, the timeout is the backstop.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = port,
            Username = "authority",
            Password = password,
            Database = "authority",
            Timeout = 3,
        }.ConnectionString;
    }
}
