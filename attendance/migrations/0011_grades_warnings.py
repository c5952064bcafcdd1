
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('attendance', '0006_liveness_policy_and_record_checks'),
    ]

    operations = [
        migrations.CreateModel(
            name='AttendanceWarning',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('rate', models.FloatField(help_text="The student's rate when it fell below.")),
                ('threshold', models.FloatField()),
                ('attended', models.PositiveIntegerField()),
                ('counted', models.PositiveIntegerField()),
                ('crossed_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('recovered_at', models.DateTimeField(blank=True, null=True)),
                ('course', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attendance_warnings', to='attendance.course')),
                ('student', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attendance_warnings', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-crossed_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='CourseGrading',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('points_present', models.PositiveSmallIntegerField(default=2)),
                ('points_late', models.PositiveSmallIntegerField(default=1)),
                ('points_excused', models.PositiveSmallIntegerField(default=1)),
                ('points_absent', models.PositiveSmallIntegerField(default=0)),
                ('warnings_enabled', models.BooleanField(default=True)),
                ('warning_rate', models.FloatField(blank=True, help_text='From 0 to 1; empty: the site default.', null=True)),
                ('warning_min_sessions', models.PositiveSmallIntegerField(default=3)),
                ('warn_lecturers', models.BooleanField(default=False)),
                ('lecturer_digest', models.BooleanField(default=False)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('course', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='grading', to='attendance.course')),
                ('updated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.CreateModel(
            name='WarningEmail',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=100, unique=True)),
                ('kind', models.CharField(choices=[('student', 'To the student'), ('lecturer', 'To a lecturer'), ('digest', 'Weekly digest')], max_length=16)),
                ('to_address', models.EmailField(max_length=254)),
                ('subject', models.CharField(max_length=200)),
                ('body', models.TextField()),
                ('status', models.CharField(choices=[('pending', 'Waiting to be sent'), ('sent', 'Sent'), ('failed', 'Not sent')], default='pending', max_length=16)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('last_error', models.CharField(blank=True, max_length=500)),
                ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('course', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='warning_emails', to='attendance.course')),
                ('recipient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='warning_emails', to=settings.AUTH_USER_MODEL)),
                ('warning', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='emails', to='attendance.attendancewarning')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddConstraint(
            model_name='attendancewarning',
            constraint=models.UniqueConstraint(condition=models.Q(('recovered_at__isnull', True)), fields=('course', 'student'), name='warning_one_open'),
        ),
        migrations.AddConstraint(
            model_name='coursegrading',
            constraint=models.CheckConstraint(condition=models.Q(('points_present__lte', 100), ('points_late__lte', 100), ('points_excused__lte', 100), ('points_absent__lte', 100)), name='grading_points_at_most_100'),
        ),
        migrations.AddConstraint(
            model_name='coursegrading',
            constraint=models.CheckConstraint(condition=models.Q(('points_present__gt', 0), ('points_late__gt', 0), ('points_excused__gt', 0), ('points_absent__gt', 0), _connector='OR'), name='grading_some_status_earns_points'),
        ),
        migrations.AddConstraint(
            model_name='coursegrading',
            constraint=models.CheckConstraint(condition=models.Q(('warning_rate__isnull', True), models.Q(('warning_rate__gt', 0), ('warning_rate__lte', 1)), _connector='OR'), name='grading_warning_rate_range'),
        ),
        migrations.AddIndex(
            model_name='warningemail',
            index=models.Index(fields=['status', 'next_attempt_at'], name='attendance__status_ed0d9a_idx'),
        ),
    ]
