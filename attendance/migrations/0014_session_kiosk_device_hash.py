from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('attendance', '0013_translated_labels_class'),
    ]

    operations = [
        migrations.AddField(
            model_name='session',
            name='kiosk_device_hash',
            field=models.CharField(blank=True, max_length=64, null=True, unique=True),
        ),
    ]
